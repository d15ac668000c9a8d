"""The operations page (`data-platform web`): every source's loads, errors, freshness and
transformation results in a browser, the same data as JSON under /api, and, behind
credentials and `--allow-actions`, retrying an errored load and re-running a table's pass.

- `model`: the read model, pydantic models the pages and the API share;
- `queries`, `schema`, `dbt_results`: build it from the metadata database, the Alembic
  history and dbt's run_results.json (reusing `loads.report` and `loads.history`);
- `actions`: retry and a table's pass, through the CLI's library functions;
- `auth`: credentials from settings, the login session and CSRF tokens;
- `render`: Jinja2 (autoescaped, secrets masked in every value) and its filters;
- `app`: the FastAPI application (`create_app`).

Nothing runs at import; FastAPI and Jinja2 are imported by `app` only.
"""
