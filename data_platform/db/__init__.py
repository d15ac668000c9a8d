"""The metadata database: engine factory, embedded server, models and Alembic migrations."""
