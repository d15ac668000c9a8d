"""The Glue machinery: what runs a Spark job here or on AWS Glue, knowing no source.

The job's side (job_input, the input and result of a run; runtime, the Spark or Glue
context; hadoop_fs, files through Hadoop's file system) needs only PySpark and the
standard library, so AWS Glue runs it from a zip of the package with no other
dependencies installed. The host side (env, springboard, deploy, scripts) may use
settings, storage and boto3. The one job, `ingest_incoming`, is the Qlik source's
conversion (`data_platform.batch.cubic_qlik.spark`): the source hands its loads to it
through `springboard.run_springboard`, so this package sits below the sources.
"""
