"""data_platform: vendor files to current-state Postgres tables and a Parquet lake."""

__version__ = "0.1.0"
