"""`data-platform run` exits with the documented code of the most specific failure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.errors import JobRunError, StorageError
from data_platform.loads import worker
from tests.qlik.conftest import QlikTable


@pytest.mark.parametrize(
    ("error", "code"), [(StorageError("bucket gone"), 4), (JobRunError("job died"), 5)]
)
def test_run_exits_with_the_code_of_the_cause(
    sample: QlikTable, monkeypatch: pytest.MonkeyPatch, error: Exception, code: int
) -> None:
    def fail(self) -> None:
        raise error

    monkeypatch.setattr(worker.TableWorker, "run", fail)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == code
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: ingest stopped for 1 table(s), the others went on")
    assert last.endswith(f"first: cubic_ods_qlik__test_sample: {error}")
