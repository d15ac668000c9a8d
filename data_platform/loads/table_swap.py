"""Load a whole new table state beside the live table, then swap it in at commit.

A new snapshot replaces every row of a table. Emptying the live table first (TRUNCATE)
takes an ACCESS EXCLUSIVE lock that blocks every reader until the load commits. Instead
the rows are COPYed into a fresh table created in the same transaction (COPY FREEZE: no
later hint-bit or freeze pass), its key is built once after the data (a sorted build,
cheaper than maintaining the index row by row), and in the last statements of the
transaction the live table is dropped and the fresh one renamed in. Readers keep seeing
the old snapshot, unblocked, until the commit; a crash at any point leaves the live table
untouched. A fresh table created in the load's transaction then never existed; one that
several COPY streams filled (`loads.parallel_copy`) was committed before the swap, and
stays until `drop_leftover` (the table's next worker run, or its next new snapshot).

A swap gives the table a new OID, so it is only done when nothing else refers to the
table by OID or sits on it (`swap_blocker` names what does): then the caller loads the
snapshot in place with a DELETE, which blocks no reader either, only costs more.

Everything copied across comes from the catalog: the column definitions, defaults,
CHECK constraints, column and constraint comments (`LIKE ... INCLUDING ALL EXCLUDING
INDEXES`), the key constraint (`pg_get_constraintdef`, Postgres's own quoting), the
table comment and the grants. Identifiers go through psycopg2.sql.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

# Privileges a GRANT can name (aclexplode's privilege_type values).
_PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)

# What a swap would lose or break, checked in one query: (reason, condition on c, the
# table's pg_class row). Views and rules hold the OID; the others would have to be
# recreated object by object.
_BLOCKERS = (
    ("it is not a plain table", "c.relkind <> 'r'"),
    (
        "another role owns it",
        "c.relowner <> (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)",
    ),
    ("it has row-level security", "c.relrowsecurity"),
    ("it has storage parameters", "c.reloptions IS NOT NULL"),
    (
        "it takes part in inheritance or partitioning",
        "EXISTS (SELECT FROM pg_inherits i WHERE c.oid IN (i.inhrelid, i.inhparent))",
    ),
    (
        "it has indexes besides its key",
        "(SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid) > 1",
    ),
    (
        "its key is not a primary key or unique constraint",
        "NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid "
        "AND k.contype IN ('p', 'u'))",
    ),
    (
        "views or rules refer to it",
        "EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = c.oid "
        "AND r.ev_class <> c.oid)",
    ),
    (
        "foreign keys involve it",
        "EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' "
        "AND c.oid IN (f.conrelid, f.confrelid))",
    ),
    (
        "it has triggers",
        "EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)",
    ),
    (
        "a column default draws from a sequence the table owns",
        "EXISTS (SELECT FROM pg_depend d JOIN pg_class q ON q.oid = d.objid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refobjid = c.oid "
        "AND d.deptype = 'a' AND q.relkind = 'S')",
    ),
    (
        "it is in a publication",
        "EXISTS (SELECT FROM pg_publication_rel p WHERE p.prrelid = c.oid)",
    ),
)


@dataclass(frozen=True)
class FreshTable:
    """The table a new snapshot is loaded into, beside `live` (schema, name)."""

    schema: str
    live: str
    name: str

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def live_ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.live)


def swap_blocker(cur, schema: str, table: str) -> str | None:
    """Why the table cannot be replaced by a swap (see the module docstring), or None."""
    cur.execute(
        sql.SQL(
            "SELECT ARRAY[{}] FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s"
        ).format(sql.SQL(", ").join(sql.SQL(condition) for _, condition in _BLOCKERS)),
        (schema, table),
    )
    row = cur.fetchone()
    if row is None:
        return "it does not exist"
    reasons = [reason for (reason, _), hit in zip(_BLOCKERS, row[0], strict=True) if hit]
    return "; ".join(reasons) or None


def create_fresh(cur, schema: str, table: str, suffix: str) -> FreshTable:
    """An empty table shaped like `schema.table`, without its indexes, named
    `dp_new_<suffix>` in the same schema. Call `swap_in` before the commit. A table of
    that name left by a stopped load (one loaded over several connections, committed
    before its swap) is dropped first."""
    fresh = FreshTable(schema, table, fresh_name(suffix))
    drop_leftover(cur, schema, suffix)
    cur.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)").format(
            fresh.ident, fresh.live_ident
        )
    )
    return fresh


def fresh_name(suffix: str) -> str:
    """The fresh table's name: `dp_new_<suffix>`, in the live table's schema."""
    return f"dp_new_{suffix}"


def drop_leftover(cur, schema: str, suffix: str) -> bool:
    """Drop `dp_new_<suffix>` in `schema` if a stopped load left it (one loaded over
    several connections commits it before its swap). Returns whether there was one."""
    name = fresh_name(suffix)
    cur.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s)",
        (schema, name),
    )
    if not cur.fetchone()[0]:
        return False
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, name)))
    return True


def key_constraint(cur, fresh: FreshTable) -> tuple[str, str]:
    """(name, definition) of the live table's key: its primary key, else its first unique
    constraint, as Postgres itself prints it (`PRIMARY KEY (id)`)."""
    cur.execute(
        "SELECT k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "WHERE k.conrelid = %s::regclass AND k.contype IN ('p', 'u') "
        "ORDER BY k.contype = 'p' DESC, k.oid LIMIT 1",
        (sql.Identifier(fresh.schema, fresh.live).as_string(cur),),
    )
    name, definition = cur.fetchone()
    return name, definition


def add_key(cur, fresh: FreshTable) -> sql.Composable:
    """The statement that builds the live table's key on the fresh table, under a
    temporary name (it raises UniqueViolation when the loaded rows repeat a key)."""
    _, definition = key_constraint(cur, fresh)
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        fresh.ident, sql.Identifier(f"{fresh.name}_key"), sql.SQL(definition)
    )


def swap_in(cur, fresh: FreshTable) -> None:
    """Replace the live table by the fresh one: its comment and grants first, then the
    drop and the renames, the only statements that lock the live table (until commit)."""
    live = fresh.live_ident
    cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", (live.as_string(cur),))
    comment = cur.fetchone()[0]
    # NULL too: the fresh table may carry a comment of its own while it loads.
    cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(fresh.ident, sql.Literal(comment)))
    cur.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, "
        "a.privilege_type, a.is_grantable FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        (live.as_string(cur),),
    )
    for grantee, privilege, grantable in cur.fetchall():
        if privilege not in _PRIVILEGES:
            raise ValueError(f"unexpected privilege {privilege!r} on {fresh.live}")
        cur.execute(
            sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(privilege),
                fresh.ident,
                sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
            )
        )
    key_name, _ = key_constraint(cur, fresh)
    cur.execute(sql.SQL("DROP TABLE {}").format(live))
    cur.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(fresh.ident, sql.Identifier(fresh.live))
    )
    cur.execute(
        sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            live, sql.Identifier(f"{fresh.name}_key"), sql.Identifier(key_name)
        )
    )
