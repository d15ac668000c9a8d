"""An installed copy of the package (a wheel, not the checkout) onboards a Qlik table:
its revision goes to `migrations/` of the working directory, or MIGRATIONS_DIR, never
into the installed package, and `upgrade` applies it (doc/adr/0006-migration-layout.md).

The wheel is built offline from a copy of the repository (so no `build/` or `*.egg-info`
lands in the working tree) with the dev venv's own build tools. `pip wheel
--no-build-isolation` needs `bdist_wheel`, which setuptools has only from 70.1 on, or
from the `wheel` package: a venv made by `python -m venv` has neither (Python 3.11
bundles setuptools 65.5). There the wheel is assembled from setuptools' own `egg_info`
and `build_py`, which choose the files a wheel of a pure-Python project holds, and
zipped as the wheel format says; a warning says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import create_engine, text

from harness.samples.qlik import Column, dfm_document

REPO = Path(__file__).resolve().parents[2]
# Not part of a build: the venv, caches, build output, local state.
_NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", ".data", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)
_BUILD_PY = """
import sys
from setuptools import setup
meta, lib = sys.argv[1:]
setup(script_args=["-q", "egg_info", "--egg-base", meta, "build_py", "--build-lib", lib])
"""


def _venv_builds_wheels() -> bool:
    """Whether setuptools in this interpreter has `bdist_wheel` (its own, or `wheel`'s)."""
    try:
        metadata.version("wheel")
        return True
    except metadata.PackageNotFoundError:
        pass
    release = re.findall(r"\d+", metadata.version("setuptools"))[:2]
    return tuple(int(part) for part in release) >= (70, 1)


def _pip(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check", "-q"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _wheel_from_build_py(src: Path, out: Path) -> Path:
    """A wheel of `src` from setuptools' egg_info and build_py, as bdist_wheel makes it
    (build_py's tree, the egg-info as dist-info), for a venv without bdist_wheel."""
    meta, lib = out / "meta", out / "lib"
    meta.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _BUILD_PY, str(meta), str(lib)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (egg_info,) = meta.glob("*.egg-info")
    pkg_info = (egg_info / "PKG-INFO").read_text()
    fields = dict(re.findall(r"^(Name|Version): (.+)$", pkg_info, re.M))
    stem = f"{re.sub(r'[-_.]+', '_', fields['Name'])}-{fields['Version']}"
    dist_info = f"{stem}.dist-info"
    files = {
        path.relative_to(lib).as_posix(): path.read_bytes()
        for path in sorted(lib.rglob("*"))
        if path.is_file()
    }
    files[f"{dist_info}/METADATA"] = pkg_info.encode()
    for extra in ("entry_points.txt", "top_level.txt"):
        if (egg_info / extra).exists():
            files[f"{dist_info}/{extra}"] = (egg_info / extra).read_bytes()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests/db/test_installed_copy.py\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,", ""]).encode()
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as it is now, without the venv, caches or build output."""
    src = tmp_path_factory.mktemp("source") / "repo"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE, symlinks=True)
    return src


@pytest.fixture(scope="module")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the repository, built once per module, offline."""
    out = tmp_path_factory.mktemp("wheel")
    if _venv_builds_wheels():
        _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source_copy),
             cwd=out)  # fmt: skip
        (built,) = out.glob("*.whl")
        return built
    warnings.warn(
        "this venv has no bdist_wheel (setuptools < 70.1 and no `wheel` package): the wheel "
        "was assembled from setuptools' build_py output instead of `pip wheel`",
        stacklevel=1,
    )
    return _wheel_from_build_py(source_copy, out / "build")


def test_the_wheel_holds_the_alembic_environment_and_no_checkout_folders(
    wheel: Path, source_copy: Path
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    core = sorted((source_copy / "data_platform/db/versions").glob("*.py"))
    assert core, "no core revisions in the repository"
    expected = {"data_platform/db/env.py", "data_platform/db/script.py.mako"}
    expected |= {f"data_platform/db/versions/{path.name}" for path in core}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    # The package and its metadata, nothing of the checkout around it.
    assert {PurePosixPath(name).parts[0] for name in names} == {
        "data_platform",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    folders = {part for name in names for part in PurePosixPath(name).parts[:-1]}
    assert not folders & {"migrations", "tests", "harness", "__pycache__"}, sorted(folders)
    # The harness (demo, benchmarks, samples, stand-ins) is not installed: no module of
    # the wheel may need it.
    with zipfile.ZipFile(wheel) as archive:
        harness_users = [
            name
            for name in names
            if name.endswith(".py")
            and re.search(rb"^\s*(from|import) harness\b", archive.read(name), re.M)
        ]
    assert harness_users == []


def _dfm(directory: Path, table: str) -> Path:
    schema, _, name = table.partition(".")
    columns = [Column("ID", "INT8", key_pos=1), Column("WHEN", "DATETIME")]
    doc = dfm_document(schema, name, columns, changes=False, file_name="LOAD00000001.csv.gz",
                       record_count=0)  # fmt: skip
    path = directory / f"{table}.dfm"
    path.write_text(json.dumps(doc))
    return path


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and modification time."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
    }


def _table_and_registration(url: str, db_table: str) -> tuple[object, list, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            regclass = conn.scalar(
                text("SELECT to_regclass(:name)::text"), {"name": f"cubic_ods_qlik.{db_table}"}
            )
            registered = conn.execute(
                text(
                    "SELECT name, source, db_schema, db_table FROM source_tables "
                    "WHERE db_table = :table"
                ),
                {"table": db_table},
            ).all()
            version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    return regclass, [tuple(row) for row in registered], version


@pytest.mark.slow
def test_an_installed_copy_onboards_outside_the_package(
    wheel: Path, empty_db_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(site), str(wheel), cwd=tmp_path)
    package = site / "data_platform"
    cwd = tmp_path / "project"
    cwd.mkdir()
    dfms = tmp_path / "dfm"
    dfms.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MIGRATIONS_DIR", "PYTHONHOME")}
    env.update(
        PYTHONPATH=str(site),
        # Nothing may appear in the package, not even bytecode.
        PYTHONDONTWRITEBYTECODE="1",
        DATABASE_URL=empty_db_url,
        DATA_PLATFORM_HOME=str(tmp_path / "home"),
    )

    def run(*args: str, **extra: str) -> str:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # The installed copy shadows the editable checkout.
    imported = run("-c", "import data_platform; print(data_platform.__file__)").strip()
    assert Path(imported).resolve().is_relative_to(package.resolve()), imported
    # A database migrated by the installed copy itself: the checkout's migrations/ may
    # hold revisions an installed copy does not know.
    assert run("-m", "data_platform", "db", "upgrade").startswith("database at ")
    installed = _files(package)

    # No MIGRATIONS_DIR: migrations/ of the working directory.
    out = run("-m", "data_platform", "cubic-qlik", "process-new-table", "--table",
              "EDW.INSTALLED", "--dfm", str(_dfm(dfms, "EDW.INSTALLED")), "--apply")  # fmt: skip
    assert "creating cubic_ods_qlik.edw_installed" in out and "database upgraded to head" in out
    assert _files(package) == installed
    local = cwd / "migrations" / "cubic_qlik"
    (first,) = local.glob("*_onboard_edw_installed.py")
    assert 'SOURCE_TABLE = "EDW.INSTALLED"' in first.read_text()
    first_rev = first.name.split("_")[1]
    assert not list((REPO / "migrations").rglob("*_onboard_edw_installed*"))
    assert _table_and_registration(empty_db_url, "edw_installed") == (
        "cubic_ods_qlik.edw_installed",
        [("cubic_ods_qlik__edw_installed", "cubic_qlik", "cubic_ods_qlik", "edw_installed")],
        first_rev,
    )

    # MIGRATIONS_DIR: the deployment keeps its revisions there (copied over, as the
    # database is at the first one) and the next one lands there too.
    deployed = tmp_path / "deployed-migrations"
    shutil.copytree(cwd / "migrations", deployed)
    before_local = _files(local)
    out = run("-m", "data_platform", "cubic-qlik", "process-new-table", "--table",
              "EDW.INSTALLED_TWO", "--dfm", str(_dfm(dfms, "EDW.INSTALLED_TWO")), "--apply",
              MIGRATIONS_DIR=str(deployed))  # fmt: skip
    assert "creating cubic_ods_qlik.edw_installed_two" in out
    assert _files(package) == installed
    (second,) = (deployed / "cubic_qlik").glob("*_onboard_edw_installed_two.py")
    assert f'down_revision: str | Sequence[str] | None = "{first_rev}"' in second.read_text()
    second_rev = second.name.split("_")[1]
    assert _files(local) == before_local
    regclass, registered, version = _table_and_registration(empty_db_url, "edw_installed_two")
    assert regclass == "cubic_ods_qlik.edw_installed_two" and len(registered) == 1
    assert version == second_rev

    # `db upgrade` from there: one linear history, one head, the database at it.
    assert run("-m", "data_platform", "db", "upgrade", MIGRATIONS_DIR=str(deployed)) == (
        f"database at {second_rev}\n"
    )
    state = json.loads(
        run("-m", "data_platform", "db", "current", "--json", MIGRATIONS_DIR=str(deployed))
    )
    assert state == {"current": [second_rev], "heads": [second_rev]}
    assert _files(package) == installed
