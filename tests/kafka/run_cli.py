"""`data-platform` in a subprocess, for the tests that kill a consumer.

Registers the kafka group if the CLI does not yet. With KAFKA_TEST_COMMIT_MARKER=<path>
(this test helper only; the platform reads no such variable), every offset commit first
touches <path> and then blocks for a minute: the test sees the batch file stored and the
commit not yet sent, and SIGKILLs the process in exactly that gap.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import confluent_kafka

marker = os.environ.get("KAFKA_TEST_COMMIT_MARKER")
if marker:

    class _SlowCommitConsumer(confluent_kafka.Consumer):
        def commit(self, *args, **kwargs):
            Path(marker).touch()
            time.sleep(60)
            return super().commit(*args, **kwargs)

    # consume.py imports Consumer from confluent_kafka when it starts.
    confluent_kafka.Consumer = _SlowCommitConsumer

from data_platform.cli.kafka import group  # noqa: E402
from data_platform.cli.main import cli  # noqa: E402

if "kafka" not in cli.commands:
    cli.add_command(group)
sys.exit(cli.main(sys.argv[1:], prog_name="data-platform"))
