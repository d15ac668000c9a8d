"""Spark jobs: Qlik loads from the incoming zone to Parquet in the springboard zone.

The modules the Glue script imports (job_input, hadoop_fs, qlik_csv, casts, convert,
runtime, ingest_incoming) need only PySpark and the standard library, so AWS Glue runs them
from a zip of this package with no other dependencies installed. The host side (env,
springboard, deploy, scripts) may use settings, storage and boto3.
"""
