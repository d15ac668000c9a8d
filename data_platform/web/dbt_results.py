"""The transformation layer's last build, from the files dbt writes: `run_results.json`
(every node's status, failures, time) and `manifest.json` (what a test tests), in dbt's
target directory under the data home (`data_platform.transform.dbt.dbt_home`).

Node outcomes are `data_platform.transform.result.NodeResult`s, so the page's verdict
and summary line are the ones `data-platform transform` prints.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg2 import sql

from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.settings import Settings, get_settings
from data_platform.transform.dbt import FULL_BUILD
from data_platform.transform.result import NodeResult, TransformResult
from data_platform.web.model import DbtNode, TransformPage
from data_platform.web.queries import Scrubber

log = logging.getLogger(__name__)


def target_dir(settings: Settings | None = None) -> Path:
    """dbt's target/ of this data home (where `run_transform` points dbt)."""
    return (settings or get_settings()).home / "dbt" / "target"


@functools.lru_cache(maxsize=4)
def _read_json(path: Path, mtime_ns: int) -> Any:
    """A JSON file, parsed once per version (`mtime_ns` is the cache key's part)."""
    return json.loads(path.read_text())


def _load(path: Path) -> Any | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    try:
        return _read_json(path, stat.st_mtime_ns)
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def _short(unique_id: str | None) -> str | None:
    """`model.data_platform.dim_date` -> `dim_date`; a source keeps its source name."""
    if not unique_id:
        return None
    _kind, _, rest = unique_id.partition(".")
    _project, _, name = rest.partition(".")
    return name or unique_id


def _node(result: dict[str, Any], manifest_nodes: dict[str, Any], clean: Scrubber) -> DbtNode:
    unique_id = result.get("unique_id") or ""
    kind = unique_id.split(".", 1)[0] or "node"
    info = manifest_nodes.get(unique_id, {})
    parts = unique_id.split(".")
    name = info.get("name") or (parts[2] if len(parts) > 2 else unique_id)
    outcome = NodeResult(
        name=name,
        kind=kind,
        status=str(result.get("status") or "unknown"),
        failures=result.get("failures"),
        message=clean(result.get("message")),
    )
    test_type = column = attached = None
    if kind == "test":
        metadata = info.get("test_metadata") or {}
        test_type = metadata.get("name") or ("singular" if info else None)
        column = info.get("column_name")
        if info.get("attached_node"):
            attached = _short(info["attached_node"])
        else:  # a singular test: what it reads
            depends = (info.get("depends_on") or {}).get("nodes") or []
            attached = ", ".join(filter(None, (_short(d) for d in depends))) or None
    relation = None
    if kind == "test" and outcome.status in ("fail", "warn", "error") and info.get("alias"):
        relation = (info.get("schema"), info["alias"])
    return DbtNode(
        failures_relation=".".join(filter(None, relation)) if relation else None,
        unique_id=unique_id,
        name=outcome.name,
        kind=outcome.kind,
        status=outcome.status,
        failures=outcome.failures,
        message=outcome.message,
        execution_seconds=result.get("execution_time"),
        test_type=test_type,
        column=column,
        attached_to=attached,
    )


def _build_dir(settings: Settings | None) -> Path:
    """Where the build the page shows lies: the last build of every model, which a later
    --select run (or a failed one) does not overwrite; else dbt's target/, which holds
    whatever ran last."""
    target = target_dir(settings)
    full = target.parent / FULL_BUILD
    return full if isinstance(_load(full / "run_results.json"), dict) else target


def last_build(settings: Settings | None = None) -> tuple[dict | None, dict[str, str]]:
    """The manifest and each node's status (by unique id) of the last build of every model
    (else of whatever ran last); (None, {}) when none ran."""
    where = _build_dir(settings)
    results = _load(where / "run_results.json")
    manifest = _load(where / "manifest.json")
    if not isinstance(results, dict) or not isinstance(manifest, dict):
        return None, {}
    return manifest, {
        str(r.get("unique_id")): str(r.get("status") or "unknown")
        for r in results.get("results") or []
    }


def transform_page(settings: Settings | None = None) -> TransformPage:
    """The last dbt build (or test) run on this data home; `found` False when none ran."""
    from data_platform.transform.dbt import project_dir

    target = target_dir(settings)
    project = str(project_dir())
    where = _build_dir(settings)
    full = target.parent / FULL_BUILD
    results = _load(where / "run_results.json")
    if not isinstance(results, dict):
        return TransformPage(found=False, project=project)
    manifest = _load(where / "manifest.json")
    nodes_info = manifest.get("nodes", {}) if isinstance(manifest, dict) else {}
    clean = Scrubber(settings or get_settings())
    nodes = [_node(item, nodes_info, clean) for item in results.get("results") or []]
    _add_failing_rows([n for n in nodes if n.failures_relation], clean)
    verdict = TransformResult(
        nodes=[NodeResult(n.name, n.kind, n.status, n.failures, n.message) for n in nodes]
    )
    metadata = results.get("metadata") or {}
    generated = metadata.get("generated_at")
    args = results.get("args") or {}
    later, later_at = _later_run(target, generated) if where == full else (None, None)
    return TransformPage(
        found=True,
        full_build=where == full,
        later_run=later,
        later_run_at=later_at,
        project=project,
        command=args.get("which"),
        generated_at=datetime.fromisoformat(generated) if generated else None,
        elapsed_seconds=results.get("elapsed_time"),
        dbt_version=metadata.get("dbt_version"),
        ok=verdict.ok,
        summary=verdict.summary(),
        models=sorted((n for n in nodes if n.kind == "model"), key=_worst_first),
        tests=sorted((n for n in nodes if n.kind == "test"), key=_worst_first),
        other=[n for n in nodes if n.kind not in ("model", "test")],
    )


def _later_run(target: Path, full_generated: str | None) -> tuple[str | None, datetime | None]:
    """The run in dbt's target/ when it came after the kept full build: one line (its
    command, selection and verdict) and when it finished; (None, None) otherwise."""
    latest = _load(target / "run_results.json")
    if not isinstance(latest, dict):
        return None, None
    generated = (latest.get("metadata") or {}).get("generated_at")
    if not generated or (full_generated and generated <= full_generated):
        return None, None
    args = latest.get("args") or {}
    chosen = args.get("select") or []
    nodes = [
        NodeResult(
            str(r.get("unique_id", "")).split(".")[-1],
            str(r.get("unique_id", "node")).split(".", 1)[0],
            str(r.get("status") or "unknown"),
            r.get("failures"),
        )
        for r in latest.get("results") or []
    ]
    selection = f" --select {' '.join(chosen)}" if chosen else ""
    line = f"dbt {args.get('which') or 'run'}{selection}: {TransformResult(nodes=nodes).summary()}"
    return line, datetime.fromisoformat(generated)


_STATUS_ORDER = {"error": 0, "fail": 1, "warn": 2, "skipped": 3}


def _worst_first(node: DbtNode) -> tuple[int, str]:
    return _STATUS_ORDER.get(node.status, 9), node.name


FAILING_ROWS = 10  # shown per test that did not pass


def _add_failing_rows(nodes: list[DbtNode], clean: Scrubber) -> None:
    """Each node's first FAILING_ROWS failing rows, read from the view dbt stored them
    in (`store_failures_as: view`, transform/dbt_project.yml), values as text, scrubbed
    of secrets. A view that is gone (a build since), or a database that cannot be read,
    leaves the node without rows."""
    if not nodes:
        return
    try:
        with get_engine().connect() as conn, dbapi_cursor(conn) as cur:
            for node in nodes:
                assert node.failures_relation is not None
                schema, _, name = node.failures_relation.partition(".")
                cur.execute(
                    "SELECT to_regclass(%s)", (sql.Identifier(schema, name).as_string(cur),)
                )
                found = cur.fetchone()
                if found is None or found[0] is None:
                    continue
                cur.execute(
                    sql.SQL("SELECT * FROM {} LIMIT %s").format(sql.Identifier(schema, name)),
                    (FAILING_ROWS,),
                )
                names = [d.name for d in cur.description or ()]
                node.failing_rows = [
                    {
                        n: clean(None if v is None else str(v))
                        for n, v in zip(names, row, strict=True)
                    }
                    for row in cur.fetchall()
                ]
    except Exception as exc:  # the page still shows the build
        log.warning("cannot read the failing rows of the data tests: %s", exc)
