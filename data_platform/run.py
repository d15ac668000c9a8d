"""One run of the whole platform (`data-platform run`): every source the platform lands
itself whose schedule is due lands its new files in incoming (`loads.landing.land_due`),
then, for every source, the scan records new files as loads and the ingest applies them.
`run_once` is the one entry: the CLI, the demo and the web's run action call it."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from data_platform.db.models import SourceName
from data_platform.errors import DataPlatformError, exit_code_for, one_line
from data_platform.loads.landing import Lander, LandResult, land_due
from data_platform.loads.source import IngestResult, ScanResult, Source
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


def all_landers() -> list[Lander]:
    """Every source the platform lands itself, in run order, as `run` lands it: on the
    platform's settings, every feed, dataset, table or topic (KAFKA_TOPICS)."""
    from data_platform.batch.cubic_dmap.lander import DmapLander
    from data_platform.batch.cubic_kafka.lander import KafkaLander
    from data_platform.batch.melbourne_pedestrian.lander import PedestrianLander
    from data_platform.batch.totesys.lander import TotesysLander

    return [DmapLander(), KafkaLander(), PedestrianLander(), TotesysLander()]


@dataclass
class SourceRun:
    """What one source did in a pass: its scan, its ingest, and its landing (a
    LandResult, the exception that failed it, or None when it did not land)."""

    name: SourceName
    scan: ScanResult
    ingest: IngestResult
    land: LandResult | Exception | None = None

    def render_lines(self) -> list[str]:
        ingest = self.ingest
        landed = f"{self.land.summary}, " if isinstance(self.land, LandResult) else ""
        head = (
            f"{self.name}: {landed}{self.scan.summary()}; archived {ingest.archived} "
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
        if isinstance(self.land, LandResult):
            lines += self.land.notes
        elif self.land is not None:
            lines.append(f"  landing failed: {one_line(self.land)[0]}")
        return lines

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"scan": asdict(self.scan), "ingest": asdict(self.ingest)}
        if isinstance(self.land, LandResult):
            found["land"] = self.land.to_dict()
        elif self.land is not None:
            found["land"] = {"error": one_line(self.land)[0]}
        return found


@dataclass
class RunSummary:
    """What each source did (`runs`), the sources that stopped (`stopped`: name -> the
    exception that stopped its scan or ingest), and the landings of the pass (`landings`:
    name -> its LandResult, or the exception that failed it; a failed landing does not
    stop its source: the files already in incoming are still loaded)."""

    runs: list[SourceRun] = field(default_factory=list)
    stopped: dict[str, BaseException] = field(default_factory=dict)
    landings: dict[str, LandResult | Exception] = field(default_factory=dict)

    def source(self, name: str) -> SourceRun:
        return next(run for run in self.runs if run.name == name)

    def to_dict(self) -> dict[str, object]:
        return {run.name: run.to_dict() for run in self.runs}

    @property
    def changed(self) -> bool:
        """Did the run land, record or finish anything?"""
        return any(
            run.scan.new_loads or run.ingest.archived or run.ingest.errored or run.ingest.replaced
            for run in self.runs
        ) or any(
            not isinstance(landed, LandResult) or landed.files or landed.failed
            for landed in self.landings.values()
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
    def landing_failures(self) -> int:
        """Landings of the pass that failed as a whole, and their items that failed while
        the others went on (a totesys table whose extraction failed): `run` exits 1."""
        return sum(
            len(landed.failures) if isinstance(landed, LandResult) else 1
            for landed in self.landings.values()
        )

    @property
    def exit_code(self) -> int:
        """What `run` exits with when no source stopped: the most specific code of the
        landings that failed as a whole (3 database, 4 storage, ...); else 1 when an item
        of a landing failed or a load errored; else 0."""
        codes = [exit_code_for(exc) for exc in self.landings.values() if isinstance(exc, Exception)]
        if codes:
            return next((code for code in codes if code != 1), 1)
        return 1 if self.errored or self.landing_failures else 0

    def render(self) -> str:
        return "\n".join(line for run in self.runs for line in run.render_lines())

    def counts(self) -> dict[str, int]:
        """What the pass did in all, as `runs` records it (`runs.COUNTS`)."""
        landed = [land for land in self.landings.values() if isinstance(land, LandResult)]
        return {
            "landed": sum(len(land.files) for land in landed),
            "recorded": sum(run.scan.new_loads for run in self.runs),
            "archived": sum(run.ingest.archived for run in self.runs),
            "errored": self.errored,
            "rows": sum(run.ingest.rows for run in self.runs),
            "dead_letters": sum(run.ingest.dead_letters for run in self.runs),
        }


def run_once(
    sources: list[Source] | None = None,
    *,
    land: bool = True,
    tables: list[str] | None = None,
    now: datetime | None = None,
) -> RunSummary:
    """One pass over `sources` (default `all_sources()`): first each of them the platform
    lands itself lands when its schedule is due at `now` (default: the clock's now; see
    `loads.landing.land_due`; `land=False` skips landing), then each is scanned and
    ingested (only `tables`, by platform name, when given: the web's run of one table).

    A landing that fails is recorded, alerted and kept in the summary's `landings`; its
    source is still scanned and ingested. A source that stops (database, storage, a bug)
    does not stop the others; the run then raises (the one cause, or DataPlatformError
    with the most specific exit code of the causes) after the others ran, the summary of
    those on the exception's `run_summary` (with each stopped source's own exception in
    its `stopped`)."""
    sources = sources or all_sources()
    summary = RunSummary()
    if land:
        names = {source.name for source in sources}
        landers = [lander for lander in all_landers() if lander.source in names]
        summary.landings = land_due(landers, now=now)
    failures: list[tuple[str, BaseException]] = []
    for source in sources:
        try:
            scan = source.scan()
            landed = summary.landings.get(source.name)
            summary.runs.append(SourceRun(source.name, scan, ingest(source, tables), landed))
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
