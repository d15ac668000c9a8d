"""What a transform run did: one result per dbt node, and whether all of it passed."""

from __future__ import annotations

from dataclasses import dataclass, field

# Statuses of a node that make the run fail (dbt's RunStatus and TestStatus values).
FAILED = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class NodeResult:
    """One model or test of the run. `failures` is the failing rows' count of a test."""

    name: str
    kind: str  # "model", "test", "seed", "snapshot", ...
    status: str  # success, error, skipped, pass, fail, warn, ...
    failures: int | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def describe(self) -> str:
        """`test not_null_x failed: 3 failing rows` and the like."""
        if self.kind == "test" and self.status in ("fail", "warn"):
            rows = self.failures or 0
            verb = "failed" if self.status == "fail" else "warned"
            return f"{self.kind} {self.name} {verb}: {rows} failing row{'s' * (rows != 1)}"
        if self.status == "error":
            reason = (self.message or "").strip().splitlines()
            return f"{self.kind} {self.name} errored" + (f": {reason[0]}" if reason else "")
        return f"{self.kind} {self.name}: {self.status}"


@dataclass(frozen=True)
class TransformResult:
    """The outcome of one `dbt build`: ok when no model errored and no test failed."""

    nodes: list[NodeResult] = field(default_factory=list)
    success: bool = True  # dbt's own verdict, False when it reports a failure

    @property
    def ok(self) -> bool:
        return self.success and not any(node.failed for node in self.nodes)

    @property
    def failed(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.failed]

    def node(self, name: str) -> NodeResult:
        """The result of the node called `name`; KeyError when it did not run."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def summary(self) -> str:
        """One line: what ran, each kind with its statuses, and how it ended, e.g.
        `transform ok: 18 models (18 success), 179 tests (178 pass, 1 warn)` (dbt's
        statuses: a model ends `success`, a test `pass`, `warn` or `fail`)."""
        kinds: dict[str, dict[str, int]] = {}
        for node in self.nodes:
            statuses = kinds.setdefault(node.kind, {})
            statuses[node.status] = statuses.get(node.status, 0) + 1
        ran = ", ".join(
            f"{sum(statuses.values())} {kind}{'s' * (sum(statuses.values()) != 1)} ("
            + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            + ")"
            for kind, statuses in sorted(kinds.items())
        )
        verdict = "ok" if self.ok else f"FAILED ({len(self.failed)} failed)"
        return f"transform {verdict}: {ran or 'nothing selected'}"

    def render(self, *, every_node: bool = True) -> str:
        """A table of every node (`every_node`), the failures and warnings spelled out,
        and the summary line. Without `every_node`: the summary line, then each failure
        and warning on a line of its own (what `run` prints unless -v)."""
        if not self.nodes:
            return self.summary()
        if not every_node:
            noted = [node for node in self.nodes if node.failed or node.status == "warn"]
            return "\n".join([self.summary(), *(f"  {node.describe()}" for node in noted)])
        width_kind = max(len(node.kind) for node in self.nodes)
        width_name = max(len(node.name) for node in self.nodes)
        lines = []
        for node in self.nodes:
            extra = ""
            if node.kind == "test" and node.status in ("fail", "warn"):
                extra = f"  {node.failures or 0} failing rows"
            lines.append(
                f"{node.kind:<{width_kind}}  {node.name:<{width_name}}  {node.status}{extra}"
            )
        if self.failed:
            lines.append("")
            lines.extend(node.describe() for node in self.failed)
        lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)
