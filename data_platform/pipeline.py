"""One pass of the whole platform: scan then ingest, for every source."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from data_platform.batch.cubic_qlik.pipeline import IngestResult, ingest
from data_platform.batch.cubic_qlik.scan import ScanResult, scan_incoming


@dataclass
class RunSummary:
    scan: ScanResult
    ingest: IngestResult

    def to_dict(self) -> dict[str, object]:
        return {"cubic_qlik": {"scan": asdict(self.scan), "ingest": asdict(self.ingest)}}

    @property
    def errored(self) -> int:
        return self.ingest.errored

    def render(self) -> str:
        lines = [
            f"cubic-qlik: {self.scan.new_loads} new load(s), {self.scan.new_snapshots} new "
            f"snapshot(s); archived {self.ingest.archived} ({self.ingest.superseded} superseded), "
            f"errored {self.ingest.errored}, {self.ingest.rows} row(s) applied"
        ]
        lines += [f"  error: {message}" for message in self.ingest.errors]
        lines += [f"  waiting on an errored load: {t}" for t in self.ingest.blocked_tables]
        lines += [
            f"  not a Qlik data file, left in place: {k}" for k in self.scan.unrecognised_keys
        ]
        return "\n".join(lines)


def run_once() -> RunSummary:
    return RunSummary(scan=scan_incoming(), ingest=ingest())
