"""Cubic DMAP, the vendor's de-personalised data API: one feed per dataset type, each listing
datasets (one gzip CSV each) that are downloaded into the incoming zone.

    client.py    HTTP: a session with retries, listing pages, results checked, downloads
    feeds.py     the feed table: add a feed, a feed's type and which API key it takes
    fetch.py     fetch every active feed: land new datasets, advance each feed's mark
    commands.py  `data-platform dmap add-feed | fetch`
    demo_api.py  a local server playing the API on sample_data/cubic/dmap_api/
"""
