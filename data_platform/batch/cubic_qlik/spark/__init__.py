"""The Qlik conversion in Spark: the body of the Glue job `ingest_incoming`, which turns the
Qlik loads of the incoming zone into Parquet partitions of the springboard zone.

It is the Qlik source's own code, beside its Postgres apply: both read the files by the
.dfm (`dfm`) and type them by the same rules (`types`). What runs it is the Glue
machinery of `data_platform.jobs` (the job input, the Spark runtime, the hand-off and
the deploy), which knows no source. These modules need only PySpark and the standard
library (and the platform's modules they import, which need no more): AWS Glue runs
them from a zip of the package with no other dependencies installed.
"""
