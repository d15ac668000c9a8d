"""Read a Qlik Replicate CSV file with Spark: every column a string, nothing lost.

Spark's CSV reader, checked against Spark 3.5.4 (tests/jobs/test_qlik_csv.py):
- With the default `nullValue=""` an empty unquoted field and a quoted `""` both read as
  NULL. Qlik means NULL by the first and an empty string by the second, so when the .dfm's
  null value is the empty field we give Spark a sentinel null value that cannot occur in
  data: the unquoted empty field is then reported as NULL by the parser and `""` stays "".
- A quote inside a quoted field is doubled in Qlik files; Spark's default escape is a
  backslash, so the escape is set to the quote character unless the .dfm names one.
- `multiLine` lets quoted fields span lines. It also makes every file a single partition,
  read in order, which the line numbers in cast errors rely on.
- FAILFAST turns a row with too few or too many fields into an error instead of NULLs, and
  `enforceSchema=false` checks the header row against the .dfm's column names.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from data_platform.batch.cubic_qlik.dfm import Dfm

# Private-use characters: no Qlik file carries this as a field value.
NULL_SENTINEL = "\ue000dp-null\ue000"


def string_schema(dfm: Dfm) -> T.StructType:
    return T.StructType([T.StructField(c.name, T.StringType(), True) for c in dfm.columns])


def csv_options(dfm: Dfm) -> dict[str, str]:
    dialect = dfm.dialect
    return {
        "header": "true",
        "enforceSchema": "false",
        "sep": dialect.delimiter,
        "quote": dialect.quote,
        "escape": dialect.escape or dialect.quote,
        "nullValue": dialect.null_value or NULL_SENTINEL,
        "emptyValue": "",
        "multiLine": "true",
        "mode": "FAILFAST",
        "encoding": "UTF-8",
        "ignoreLeadingWhiteSpace": "false",
        "ignoreTrailingWhiteSpace": "false",
    }


def read_qlik_csv(spark: SparkSession, uri: str, dfm: Dfm) -> DataFrame:
    """The file as a DataFrame of strings in the .dfm's column order (gzip by extension)."""
    return spark.read.options(**csv_options(dfm)).schema(string_schema(dfm)).csv(uri)
