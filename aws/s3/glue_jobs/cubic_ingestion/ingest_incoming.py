"""AWS Glue job `ingest_incoming`: Qlik loads in the incoming zone -> Parquet in the springboard.

The same file runs on AWS Glue (StartJobRun), in the Glue container (gluesparksubmit) and
with plain PySpark (`python ingest_incoming.py ...`). Arguments and behaviour are
documented in data_platform/batch/cubic_qlik/spark/ingest_incoming.py, where the code lives.
"""

import sys

from data_platform.batch.cubic_qlik.spark.ingest_incoming import main

# No __main__ guard: Glue executes this file as the job; nothing imports it.
main(sys.argv)
