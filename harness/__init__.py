"""The harness: what shows, measures and tests the platform, never run in production.

    demo.py        `make demo`: the whole flow on sample_data/
    bench/         `make bench`: speed and memory of the platform's paths
    samples/       files and records as the sources write them (Qlik, pedestrian, Kafka)
    stand_ins/     local servers playing the DMAP and pedestrian APIs, a Kafka broker
    totesys/       seed the totesys source database and simulate its business
    cli.py         `python -m harness <command>`

Not installed (the package is `data_platform` only): run it from the checkout. It imports
the platform; the platform never imports it.
"""
