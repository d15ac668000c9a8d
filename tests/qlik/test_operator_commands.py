"""What an operator types: `loads list | show | skip`, `retry`, and tables by any name."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import LoadEvent
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_bad_file_is_listed_shown_skipped_and_the_table_goes_on(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    bad = sample.changes([(seq(1), "I", T, "x", "bad", T)], name="20211201-000000001")
    sample.changes([(seq(2), "I", T, 7, "seven", T)], name="20211201-000000002")
    summary = qlik.run()
    assert summary.ingest.blocked_tables == ["cubic_ods_qlik__test_sample"]
    code, out, _ = run("loads", "list", "--status", "errored", "--json")
    ((errored),) = json.loads(out)
    assert (code, errored["key"], errored["status"]) == (0, bad, "errored")
    # The error's parts as fields of their own: no reading them out of the message.
    assert errored["error_parts"]["file"] == bad and errored["error_parts"]["line"] == 2
    assert errored["error_parts"]["column"] == "SAMPLE_ID"
    reason = errored["error_parts"]["reason"]
    assert reason and f"line 2, column SAMPLE_ID: {reason}" in errored["error"]
    code, out, _ = run("status", "--json")
    (table,) = [t for t in json.loads(out)["tables"] if t["table"] == "cubic_ods_qlik__test_sample"]
    assert table["latest_error_parts"] == errored["error_parts"]
    load_id = errored["id"]
    # Every name of the table selects the same loads; another name is an error.
    for name in ("TEST.SAMPLE", "cubic_ods_qlik.test_sample", "cubic_ods_qlik__test_sample"):
        code, out, _ = run("loads", "list", "--table", name, "--json")
        assert code == 0 and len(json.loads(out)) == 3, name
    code, _, err = run("loads", "list", "--table", "TEST.SAMPEL")
    assert code == 2
    assert err.strip() == "Error: no table 'TEST.SAMPEL'; did you mean cubic_ods_qlik__test_sample?"
    code, out, _ = run("loads", "show", str(load_id))
    assert code == 0
    assert f"load {load_id} (cubic_ods_qlik__test_sample): errored" in out
    assert "error:    " + errored["error"] in out
    assert "ready -> ingesting" in out and "ingesting -> ready_for_erroring" in out
    assert "erroring -> errored" in out
    assert "now in:   error: cubic/ods_qlik/TEST.SAMPLE__ct/landed=" in out
    # Skipped for good: recorded who and why; the later load then applies.
    code, _, err = run("loads", "skip", str(load_id), "--reason", " ")
    assert (code, err.strip()) == (1, "Error: a skip needs a reason (--reason)")
    code, out, _ = run("loads", "skip", str(load_id), "--reason", "resent as 002", "--by", "ops")
    assert (code, out.strip()) == (
        0,
        f"load {load_id} skipped (its file stays in the error zone)",
    )
    summary = qlik.run()
    assert summary.ingest.archived == 1 and summary.ingest.blocked_tables == []
    assert [r[0] for r in sample.rows()] == [1, 2, 7]
    with get_engine().connect() as conn:
        last = conn.execute(
            select(LoadEvent.to_status, LoadEvent.actor, LoadEvent.reason)
            .where(LoadEvent.load_id == load_id)
            .order_by(LoadEvent.id.desc())
            .limit(1)
        ).one()
    assert tuple(last) == ("skipped", "ops", "resent as 002")
    assert qlik.filed("error").count(bad) == 1  # kept
    code, _, err = run("loads", "skip", str(load_id), "--reason", "again")
    assert code == 1 and "only ready or errored loads can be skipped" in err
    code, out, _ = run("loads", "show", str(load_id), "--json")
    assert json.loads(out)["events"][-1]["reason"] == "resent as 002"


def test_a_ready_load_skipped_moves_its_file_to_the_error_zone(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    from data_platform.batch.cubic_qlik.scan import scan_incoming

    qlik.run()
    key = sample.changes([(seq(1), "I", T, 9, "never", T)])
    scan_incoming()
    code, out, _ = run("loads", "list", "--status", "ready", "--json")
    (load,) = json.loads(out)
    code, out, _ = run("loads", "skip", str(load["id"]), "--reason", "test data")
    assert (code, out.strip()) == (
        0,
        f"load {load['id']} skipped (its file moved to the error zone)",
    )
    assert key not in qlik.keys("incoming")
    assert qlik.filed("error") == [key, key.replace(".csv.gz", ".dfm")]
    qlik.run()
    assert [r[0] for r in sample.rows()] == [1, 2]  # never applied


def test_applied_loads_show_their_rows_and_retry_records_who(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    code, out, _ = run("loads", "list")
    assert code == 0 and "archived" in out and "2 row(s)" in out
    key = sample.changes([(seq(1), "I", T, "x", "bad", T)])
    qlik.run()
    code, out, _ = run("loads", "list", "--status", "errored", "--json")
    (load,) = json.loads(out)
    sample.changes([(seq(1), "I", T, 3, "fixed", T)])
    code, out, _ = run("retry", str(load["id"]))
    assert code == 0
    qlik.run()
    code, out, _ = run("loads", "show", str(load["id"]))
    assert "errored -> ready by " in out and ": using the file put back in incoming" in out
    assert ", 1 row(s)" in out and "now in:   archive: " in out
    assert qlik.filed("error").count(key) == 0  # the stale copy of the fixed file is gone


def test_an_unknown_table_is_an_error_everywhere_with_close_matches(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    code, _, err = run("cubic-qlik", "ingest", "--table", "test.sampl")
    assert code == 2 and "did you mean cubic_ods_qlik__test_sample?" in err
    assert run("cubic-qlik", "scan")[0] == 0
    code, out, _ = run("cubic-qlik", "ingest", "--table", "TEST.SAMPLE")
    assert code == 0 and "archived 1 load(s)" in out
