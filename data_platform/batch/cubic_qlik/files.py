"""Which keys under a table's prefix are what: full-load parts, change files, metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

FULL_LOAD_RE = re.compile(r"^LOAD(\d{8})\.csv(\.gz)?$")
CHANGE_RE = re.compile(r"^(\d{8}-\d{9})\.csv(\.gz)?$")
CHANGE_SUFFIX = "__ct"


class FileKind(StrEnum):
    FULL_LOAD = "full_load"
    CHANGES = "changes"
    METADATA = "metadata"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TablePrefixes:
    """`cubic/ods_qlik/EDW.SAMPLE/` and its change-file sibling `.../EDW.SAMPLE__ct/`."""

    full_load: str

    @property
    def changes(self) -> str:
        return self.full_load.rstrip("/") + CHANGE_SUFFIX + "/"

    def owns(self, key: str) -> bool:
        return key.startswith((self.full_load, self.changes))


def file_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def classify(prefixes: TablePrefixes, key: str) -> FileKind:
    if not prefixes.owns(key):
        return FileKind.UNKNOWN
    name = file_name(key)
    rest = key[len(prefixes.changes) :] if key.startswith(prefixes.changes) else None
    if rest is None:
        rest = key[len(prefixes.full_load) :]
    if "/" in rest:
        return FileKind.UNKNOWN
    if name.endswith(".dfm"):
        return FileKind.METADATA
    if key.startswith(prefixes.changes):
        return FileKind.CHANGES if CHANGE_RE.match(name) else FileKind.UNKNOWN
    return FileKind.FULL_LOAD if FULL_LOAD_RE.match(name) else FileKind.UNKNOWN


def is_snapshot_start(key: str) -> bool:
    """The first part of a full load: a new one starts a new snapshot."""
    match = FULL_LOAD_RE.match(file_name(key))
    return match is not None and int(match.group(1)) == 1


def is_full_load(key: str) -> bool:
    return bool(FULL_LOAD_RE.match(file_name(key)))
