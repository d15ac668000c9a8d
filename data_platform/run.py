"""One run of the whole platform: for every source, the scan that records new files as
loads, then the ingest that applies them (`data-platform run`)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from data_platform.errors import DataPlatformError, exit_code_for
from data_platform.loads.source import IngestResult, Source
from data_platform.loads.worker import ingest

log = logging.getLogger(__name__)


def all_sources() -> list[Source]:
    """Every source the platform runs, in run order."""
    from data_platform.batch.cubic_dmap.source import DMAP
    from data_platform.batch.cubic_kafka.source import KAFKA
    from data_platform.batch.cubic_qlik.source import QLIK
    from data_platform.batch.melbourne_pedestrian.source import PEDESTRIAN
    from data_platform.batch.totesys.source import TOTESYS

    return [QLIK, DMAP, KAFKA, PEDESTRIAN, TOTESYS]


@dataclass
class SourceRun:
    name: str
    scan: Any  # the source's scan result: new_loads, render_lines()
    ingest: IngestResult

    def render_lines(self) -> list[str]:
        ingest = self.ingest
        head = (
            f"{self.name}: {self.scan.summary()}; archived {ingest.archived} "
            f"({ingest.superseded} superseded), errored {ingest.errored}, "
            f"{ingest.rows} row(s) applied"
        )
        lines = [head]
        if ingest.dead_letters:
            lines.append(
                f"  {ingest.dead_letters} record(s) dead-lettered (not rows; the rest of their "
                "files loaded): `data-platform status`, `data-platform loads show <id>`"
            )
        lines += [f"  error: {message}" for message in ingest.errors]
        lines += [f"  waiting on an errored load: {t}" for t in ingest.blocked_tables]
        if ingest.replaced:
            lines.append(
                f"  {ingest.replaced} file(s) replaced in incoming after the scan: not applied; "
                "their new versions are loads of their own at the next scan"
            )
        lines += self.scan.notes()
        return lines


@dataclass
class RunSummary:
    """What each source did (`runs`), and the sources that stopped (`stopped`: name ->
    the exception that stopped its scan or ingest)."""

    runs: list[SourceRun] = field(default_factory=list)
    stopped: dict[str, BaseException] = field(default_factory=dict)

    def source(self, name: str) -> SourceRun:
        return next(run for run in self.runs if run.name == name)

    def to_dict(self) -> dict[str, object]:
        return {
            run.name: {"scan": asdict(run.scan), "ingest": asdict(run.ingest)} for run in self.runs
        }

    @property
    def changed(self) -> bool:
        """Did the run record or finish anything?"""
        return any(
            run.scan.new_loads or run.ingest.archived or run.ingest.errored or run.ingest.replaced
            for run in self.runs
        )

    @property
    def transform_needed(self) -> bool:
        """Did rows of a source the dbt models read arrive (`Source.transforms`)?"""
        by_name = {source.name: source for source in all_sources()}
        return any(
            run.ingest.archived and getattr(by_name.get(run.name), "transforms", False)
            for run in self.runs
        )

    @property
    def errored(self) -> int:
        return sum(run.ingest.errored for run in self.runs)

    @property
    def scan_errors(self) -> int:
        """Failures of a source's scan that did not stop the source (a totesys table
        whose extraction failed while the other tables went on): `run` exits 1."""
        return sum(len(getattr(run.scan, "errors", None) or []) for run in self.runs)

    def render(self) -> str:
        return "\n".join(line for run in self.runs for line in run.render_lines())


def run_once(sources: list[Source] | None = None) -> RunSummary:
    """Scan then ingest every source. A source that stops (database, storage, a bug)
    does not stop the others; the run then raises (the one cause, or DataPlatformError
    with the most specific exit code of the causes) after the others ran, the summary of
    those on the exception's `run_summary` (with each stopped source's own exception in
    its `stopped`)."""
    summary = RunSummary()
    failures: list[tuple[str, BaseException]] = []
    for source in sources or all_sources():
        try:
            scan = source.scan()
            summary.runs.append(SourceRun(source.name, scan, ingest(source)))
        except Exception as exc:
            log.error("%s stopped: %s", source.name, exc, extra={"source": source.name})
            failures.append((source.name, exc))
            summary.stopped[source.name] = exc
    if failures:
        if len(failures) == 1:
            error = failures[0][1]
        else:
            name, first = failures[0]
            error = DataPlatformError(f"{len(failures)} source(s) stopped; first: {name}: {first}")
            codes = [exit_code_for(exc) for _, exc in failures]
            error.exit_code = next((code for code in codes if code != 1), 1)
            error.__cause__ = first
        # What the sources that did run did, for the caller to show before the error.
        error.run_summary = summary  # type: ignore[attr-defined]
        raise error
    return summary
