"""Logging, configured once by the CLI: one line per event, to stderr, text or JSON.

Modules log with `logging.getLogger(__name__)` and put ids in `extra=`:
`log.info("applied %s rows", n, extra={"table": name, "load_id": load.id})`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# Attributes of a LogRecord that are not user-supplied extras.
# uvicorn's `color_message` is its message again with terminal colours: never an id.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _as_is(text: str) -> str:
    return text


class TextFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <logger>: <message> [id=value ...]`, the traceback after it;
    `clean` (e.g. the alert scrub with the settings' secrets) applied to the whole line."""

    def __init__(self, clean: Callable[[str], str] = _as_is) -> None:
        super().__init__()
        self.clean = clean

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        ids = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if ids:
            line += f" [{ids}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.clean(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per event; `clean` applied to each text value before it is
    encoded (after, a secret with a quote or backslash would no longer match)."""

    def __init__(self, clean: Callable[[str], str] = _as_is) -> None:
        super().__init__()
        self.clean = clean

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(
            {k: self.clean(v) if isinstance(v, str) else v for k, v in payload.items()},
            default=lambda value: self.clean(str(value)),
        )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is logged, not when the handler was
    made: a caller that swaps stderr (click's test runner, a daemon's redirect) and closes
    its stream later never leaves the platform logging into a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure(level: str = "INFO", fmt: str = "text", clean: Callable[[str], str] = _as_is) -> None:
    """Every log line to stderr at `level` and up, as text or JSON (`fmt`), each passed
    through `clean` first: the CLI and the page give the alert scrub, so no secret of the
    settings, URL password or signed query reaches a log (house style)."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter(clean) if fmt == "json" else TextFormatter(clean))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries are noisy at INFO; keep their warnings.
    for name in (
        "botocore",
        "boto3",
        "s3transfer",
        "urllib3",
        "py4j",
        "alembic.runtime",
        "pgserver",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
