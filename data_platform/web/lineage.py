"""Lineage (issue 26 item 1): from each source through its tables to the dbt models and
the tests that read them, from the platform's source registry (`source_tables`, with each
table's state) and dbt's manifest and results of the last build of every model
(`dbt_results`). Each node links to its page and carries its state.

A dbt source is the platform table it reads: the same schema and table, or (totesys's
`totesys_history`) a schema that begins with the table's and the same name, as the one
loader writes both. Tests are many (one per column check): a model shows how many of its
tests passed; a test that failed, warned or errored is a node of its own, with the
tables that feed it (`fed_by`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from data_platform.web.model import Overview

# Where a node's state is drawn from, worst first.
BAD = ("failed", "error", "fail")
WARN = ("late", "behind", "warn", "never")


@dataclass
class LineageNode:
    id: str
    kind: str  # source | table | model | test
    name: str
    state: str  # the table's state, the node's dbt status, or a source's worst table's
    url: str
    layer: int = 0
    detail: str = ""
    fed_by: list[str] = field(default_factory=list)  # tables upstream (failing tests)


@dataclass
class Lineage:
    nodes: list[LineageNode]
    edges: list[tuple[str, str]]  # (from id, to id)
    built: bool  # False: no dbt build to read models from yet


def _worst(states: Iterable[str]) -> str:
    found = list(states)
    for state in found:
        if state in BAD:
            return "failed"
    for state in found:
        if state in WARN:
            return "warn"
    return "ok" if found else "never"


def build(
    overview: Overview,
    manifest: dict[str, Any] | None,
    statuses: dict[str, str],
    table_url: Callable[[str], str],
) -> Lineage:
    """The graph: `overview` gives sources and tables with their states, `manifest` the
    dbt DAG (None: no build yet), `statuses` each dbt node's status by unique id."""
    nodes: dict[str, LineageNode] = {}
    edges: list[tuple[str, str]] = []
    for source in overview.sources:
        nodes[f"source:{source.name}"] = LineageNode(
            f"source:{source.name}",
            "source",
            source.name,
            source.state or "never",
            f"/?source={source.name}",
            layer=0,
            detail=f"{source.tables} table(s)",
        )
    by_place: dict[tuple[str, str], str] = {}
    for table in overview.tables:
        node_id = f"table:{table.name}"
        nodes[node_id] = LineageNode(
            node_id, "table", table.name, table.state, table_url(table.name), layer=1,
            detail=table.db_name or "",
        )  # fmt: skip
        edges.append((f"source:{table.source}", node_id))
        if table.db_name:
            schema, _, name = table.db_name.partition(".")
            by_place[(schema, name)] = node_id
    if not manifest:
        return Lineage(list(nodes.values()), edges, built=False)
    # dbt source -> the platform table it reads.
    read: dict[str, str] = {}
    for unique_id, source in (manifest.get("sources") or {}).items():
        schema, name = source.get("schema"), source.get("identifier") or source.get("name")
        found = by_place.get((schema, name))
        if found is None:
            found = next(
                (tid for (s, n), tid in by_place.items() if n == name and schema.startswith(s)),
                None,
            )
        if found is not None:
            read[unique_id] = found
    dbt_nodes = manifest.get("nodes") or {}
    models = {uid: n for uid, n in dbt_nodes.items() if n.get("resource_type") == "model"}
    depth: dict[str, int] = {}

    def layer_of(uid: str, seen: frozenset[str] = frozenset()) -> int:
        """2 for a model that reads only tables, one more than its deepest parent model."""
        if uid in depth:
            return depth[uid]
        parents = [p for p in models[uid]["depends_on"]["nodes"] if p in models and p not in seen]
        depth[uid] = max((layer_of(p, seen | {uid}) + 1 for p in parents), default=2)
        return depth[uid]

    tests_of: dict[str, list[str]] = {}
    for uid, test in dbt_nodes.items():
        if test.get("resource_type") != "test":
            continue
        for parent in test["depends_on"]["nodes"]:
            tests_of.setdefault(parent, []).append(uid)
    for uid, model in models.items():
        tests = tests_of.get(uid, [])
        passed = sum(statuses.get(t) == "pass" for t in tests)
        nodes[uid] = LineageNode(
            uid,
            "model",
            model["name"],
            _worst([statuses.get(uid, "never"), *(statuses.get(t, "") for t in tests)]),
            f"/transform#{model['name']}",
            layer=layer_of(uid),
            detail=f"{passed} of {len(tests)} test(s) passed" if tests else "no tests",
        )
        for parent in model["depends_on"]["nodes"]:
            upstream = read.get(parent, parent if parent in models else None)
            if upstream is not None:
                edges.append((upstream, uid))
    last = max((n.layer for n in nodes.values()), default=1) + 1
    for uid, test in dbt_nodes.items():
        status = statuses.get(uid)
        if test.get("resource_type") != "test" or status not in ("fail", "warn", "error"):
            continue
        parents = [read.get(p, p) for p in test["depends_on"]["nodes"]]
        nodes[uid] = LineageNode(
            uid, "test", test["name"], status, f"/transform#{test['name']}", layer=last,
            detail="fed by " + ", ".join(sorted(_tables_upstream(uid, dbt_nodes, read))),
            fed_by=sorted(_tables_upstream(uid, dbt_nodes, read)),
        )  # fmt: skip
        edges += [(parent, uid) for parent in parents if parent in nodes]
    kept = {(a, b) for a, b in edges if a in nodes and b in nodes}
    return Lineage(list(nodes.values()), sorted(kept), built=True)


def _tables_upstream(uid: str, dbt_nodes: dict[str, Any], read: dict[str, str]) -> set[str]:
    """The platform tables (names) a dbt node reads, directly or through models."""
    found: set[str] = set()
    todo, seen = [uid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in read:
            found.add(read[current].removeprefix("table:"))
            continue
        node = dbt_nodes.get(current)
        if node is not None:
            todo += node.get("depends_on", {}).get("nodes", [])
    return found


# --- drawn as SVG ---------------------------------------------------------------------------

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 200, 26, 60, 10, 10


def layout(lineage: Lineage) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Each node's top-left corner by layer (left to right) and order (top to bottom),
    and the drawing's width and height, in pixels."""
    layers: dict[int, list[LineageNode]] = {}
    for node in lineage.nodes:
        layers.setdefault(node.layer, []).append(node)
    ordered = sorted(layers)
    places: dict[str, tuple[int, int]] = {}
    tallest = 0
    for column, layer in enumerate(ordered):
        for row, node in enumerate(sorted(layers[layer], key=lambda n: (n.kind, n.name))):
            places[node.id] = (
                MARGIN + column * (BOX_W + GAP_X),
                MARGIN + row * (BOX_H + GAP_Y),
            )
        tallest = max(tallest, len(layers[layer]))
    width = MARGIN * 2 + len(ordered) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + tallest * (BOX_H + GAP_Y)
    return places, width, height
