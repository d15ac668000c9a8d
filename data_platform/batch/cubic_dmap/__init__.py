"""Cubic DMAP, the vendor's de-personalised data API: one feed per dataset type, each listing
datasets (one gzip CSV each).

Fetch (HTTP side): datasets downloaded into the incoming zone.
    client.py      a session with retries, listing pages, results checked, downloads
    feeds.py       the feed table: add a feed, a feed's type and which API key it takes
    fetch/         fetch every active feed: land new datasets, advance each feed's mark
                   (its `__main__.py`: `python -m data_platform.batch.cubic_dmap.fetch`)

Commands: data_platform/cli/dmap.py (`data-platform dmap add-feed | fetch | ...`).

Ingest: the landed files loaded into their type's table.
    naming.py      names: source, schema, a type's table, prefix and keys
    types.py       declared column types of dataset types
    onboarding.py  a reviewed revision creating a type's table
    source.py      DMAP as a source of the worker: scan and apply
"""
