"""The documents are true: the generated ones equal their generators' output, and what the
README and the doc/ pages name exists: every `data-platform` command with its options,
every `python -m` module (asked for its --help), every `make` target, repository path,
Python name, setting and link. The marked shell blocks run in test_readme.py.

The architecture decision records (doc/adr/) are records of their day: only their links
are checked."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from data_platform.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "doc"
GENERATED = (DOC / "cli.md", DOC / "configuration.md")
README_MAX_LINES = 300

# Upper-case names that look like settings (a settings' first word) and are not: the
# placeholder of a command's argument.
NOT_SETTINGS = {"LOAD_ID"}


def pages() -> list[Path]:
    """The README and the hand-written pages of doc/ (not the references, not the ADRs)."""
    found = [REPO / "README.md", *sorted(DOC.rglob("*.md"))]
    return [p for p in found if p not in GENERATED and DOC / "adr" not in p.parents]


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def code_of(text: str) -> list[str]:
    """The code of a page, line by line: every line of its ```sh blocks and every inline
    code span (output blocks, ``` without a language, are quotes, not commands)."""
    lines = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        lines += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    lines += re.findall(r"`([^`\n]+)`", prose.replace("\n", " "))
    return lines


def _words(command: str) -> list[str]:
    """A command line's words up to the end of the command (a comment, a pipe, a closing
    parenthesis, a `;` or `&&`), quotes honoured when they balance."""
    command = re.split(r"\s#|\||&&|;|\)|>", command)[0]
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def mentions(program: str) -> list[tuple[str, list[str]]]:
    """(page, words after the program) for every mention of `program` in the pages' code."""
    pattern = re.compile(rf"(?:^|[\s\"'(=])(?:\.venv/bin/)?{re.escape(program)}(?=\s|$)")
    found = []
    for page in pages():
        for line in code_of(page.read_text()):
            for match in pattern.finditer(line):
                found.append((_name(page), _words(line[match.end() :])))
    return found


def top_level_names() -> set[str]:
    """The repository's top-level files and folders that git keeps, and the folders the
    README's folder map shows at the top level."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return {path.split("/")[0] for path in tracked} | {
        entry.split("/")[0] for entry in folder_map() if "/" in entry
    }


def folder_map() -> list[str]:
    """The paths of the README's folder map, each relative to the repository root."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Folder map")
    (block,) = re.findall(r"^```\n(.*?)^```", text[start:], re.MULTILINE | re.DOTALL)[:1]
    paths, parent = [], ""
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        word = line.split()[0] if line.strip() else ""
        if not word or indent > 2 or not re.match(r"^[\w.-]+[/,]?", word):
            continue  # a description's second line
        names = [w.strip(",") for w in line.strip().split("  ")[0].split()]
        if indent == 0:
            parent = names[0] if names[0].endswith("/") else ""
            paths += names
        else:
            paths += [parent + name for name in names]
    return paths


def _listed(wrong: list[str]) -> str:
    return "\n" + "\n".join(wrong)


def _ignored(path: str) -> bool:
    return (
        subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0
    )


def repo_paths() -> list[tuple[str, str]]:
    """(page, path) for every repository path a page names, in code or in prose."""
    names = "|".join(re.escape(name) for name in sorted(top_level_names(), key=len)[::-1])
    pattern = re.compile(rf"(?<![\w./$-])((?:{names})/[\w./<>*=-]*)")
    found = []
    for page in pages():
        for match in pattern.finditer(page.read_text()):
            found.append((_name(page), match.group(1).rstrip(".")))
    return found


def _exists(path: str) -> bool:
    """A path exists; one with a placeholder (`<source>`, `*`) exists up to its first
    placeholder (`migrations/<source>/` needs `migrations/`)."""
    parts = path.rstrip("/").split("/")
    fixed = []
    for part in parts:
        if "<" in part or "*" in part:
            break
        fixed.append(part)
    return (REPO.joinpath(*fixed)).exists()


# --- generated references ---------------------------------------------------------------


def test_the_configuration_reference_is_current() -> None:
    from data_platform.cli.settings_reference import render

    assert (DOC / "configuration.md").read_text() == render(), (
        "doc/configuration.md is stale: "
        "python -m data_platform.cli.settings_reference > doc/configuration.md"
    )


def test_every_setting_has_a_description_that_renders() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description= (doc/configuration.md)"
        # Markdown would take <zone> outside a code span for an HTML tag and drop it.
        outside_code = re.sub(r"`[^`]*`", "", field.description)
        assert "<" not in outside_code, f"{name}: put <...> in backticks"


# --- the README's shape --------------------------------------------------------------------


def test_the_readme_reads_in_ten_minutes() -> None:
    lines = (REPO / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into doc/"


def test_every_page_is_reachable_from_the_readme() -> None:
    """Every page of doc/ is linked from the README, or from a page the README links."""
    seen, todo = set(), [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md" or not page.is_file():
            continue
        seen.add(page)
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if "://" not in target:
                todo.append((page.parent / target).resolve())
    unlinked = sorted(_name(p) for p in DOC.rglob("*.md") if p not in seen)
    assert not unlinked, _listed(unlinked)


def test_the_readme_has_a_guide_for_every_source_the_platform_runs() -> None:
    from data_platform.run import all_sources

    text = (REPO / "README.md").read_text()
    start = text.index("\n## The five sources")
    section = text[start : text.index("\n## ", start + 1)]
    guides = re.findall(r"^\| \[[^]]+\]\((doc/sources/[\w-]+\.md)\)", section, re.MULTILINE)
    assert len(guides) == len(all_sources()) == 5
    assert sorted(guides) == sorted(_name(p) for p in (DOC / "sources").glob("*.md"))


def test_the_readme_names_the_versions_a_new_machine_needs() -> None:
    versions = dict(line.split() for line in (REPO / ".tool-versions").read_text().splitlines())
    python = ".".join(versions["python"].split(".")[:2])
    java = re.search(r"(\d+)\.", versions["java"]).group(1)
    text = (REPO / "README.md").read_text()
    assert f"Python {python}" in text and f"Java {java}" in text


def test_make_demo_and_make_bench_run_what_the_pages_say() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target, page in (("demo", "README.md"), ("bench", "doc/benchmarks.md")):
        recipe = re.search(rf"^{target}:.*\n\t(.*)\n", makefile, re.MULTILINE).group(1)
        command = recipe.replace("$(BIN)/", "")
        assert f"`{command}`" in (REPO / page).read_text() or (
            f"`{command} " in (REPO / page).read_text()
        ), f"make {target} runs {command}, which {page} does not say"


def test_the_exit_codes_are_those_of_the_code() -> None:
    from data_platform import errors

    text = (DOC / "operations.md").read_text()
    section = text[text.index("\n## Exit codes") :]
    documented = {int(code) for code in re.findall(r"^\| (\d) \|", section, re.MULTILINE)}
    raised = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.DataPlatformError)
    }
    # 0 is success; 1-4 also come from other libraries' errors (errors.exit_code_for).
    assert documented == {0, 1, 2, 3, 4} | raised


# --- what the pages name exists ------------------------------------------------------------


def test_the_pages_name_commands() -> None:
    assert len(mentions("data-platform")) >= 50
    assert len(mentions("python")) >= 5


def test_every_data_platform_command_exists_with_its_options() -> None:
    from data_platform.cli.main import cli

    wrong = []
    for page, words in mentions("data-platform"):
        command: click.Command = cli
        options = {"-h", "--help"}
        for param in cli.params:
            options |= {*param.opts, *param.secondary_opts}
        rest = list(words)
        while isinstance(command, click.Group) and rest and not rest[0].startswith(("-", "[")):
            sub = command.get_command(click.Context(command), rest[0])
            if sub is None:
                wrong.append(f"{page}: data-platform has no command {' '.join(words[:2])!r}")
                break
            command, rest = sub, rest[1:]
        for param in command.params:
            options |= {*param.opts, *param.secondary_opts}
        for word in rest:
            option = word.strip("[]").split("=")[0]
            if option.startswith("-") and option not in options and not option[1:].isdigit():
                wrong.append(f"{page}: {command.name} has no option {option} ({' '.join(words)})")
    assert not wrong, _listed(wrong)


def test_every_python_module_exists_with_its_options(tmp_path: Path) -> None:
    asked: dict[tuple[str, ...], set[str]] = {}
    for _, words in mentions("python"):
        if words[:1] != ["-m"] or len(words) < 2:
            continue
        flags = [i for i, w in enumerate(words) if i > 1 and w.lstrip("[").startswith("-")]
        options = [words[i].strip("[]").split("=")[0] for i in flags]
        # The words between the module and its first option name a subcommand.
        subcommand = [
            w for w in words[2 : flags[0] if flags else None] if re.fullmatch(r"[a-z][\w-]*", w)
        ]
        asked.setdefault((words[1], *subcommand), set()).update(options)

    def help_of(call: tuple[str, ...]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", *call, "--help"],
            # Away from a developer's .env, with the repository importable as from its root.
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        helps = dict(zip(asked, pool.map(help_of, asked), strict=True))
    wrong = []
    for call, options in asked.items():
        done = helps[call]
        unknown = sorted(option for option in options if option not in done.stdout)
        if done.returncode != 0 or unknown:
            reason = done.stderr.strip()[-200:] if done.returncode else f"no {unknown}"
            wrong.append(f"python -m {' '.join(call)}: {reason}")
    assert not wrong, _listed(wrong)


def test_every_make_target_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    named = {
        (page, target)
        for page in pages()
        for line in code_of(page.read_text())
        for target in re.findall(r"(?:^|\s)make ([\w-]+)", line)
    }
    assert len(named) >= 5
    wrong = sorted(f"{_name(page)}: make {t}" for page, t in named if t not in targets)
    assert not wrong, _listed(wrong)


def test_every_repository_path_exists() -> None:
    paths = repo_paths()
    assert len(paths) >= 50
    missing = sorted({f"{page}: {path}" for page, path in paths if not _exists(path)})
    wrong = [m for m in missing if not _ignored(m.split(": ", 1)[1])]
    assert not wrong, _listed(wrong)


def test_the_folder_map_shows_what_is_there() -> None:
    entries = folder_map()
    assert "data_platform/" in entries and "tests/" in entries
    wrong = [entry for entry in entries if not (REPO / entry).exists()]
    assert not wrong, _listed(wrong)


def test_the_folder_map_shows_every_folder() -> None:
    """Every top-level folder of the repository (but the hidden ones) and every package of
    data_platform/ and its batch/ is on the map, so a newcomer finds a new one there."""
    entries = [Path(entry) for entry in folder_map()]
    shown = {str(path) for entry in entries for path in (entry, *entry.parents)}
    folders = [name for name in top_level_names() if (REPO / name).is_dir()]
    packages = [
        str(init.parent.relative_to(REPO))
        for package in ("data_platform", "data_platform/batch")
        for init in (REPO / package).glob("*/__init__.py")
    ]
    missing = [f for f in [*folders, *packages] if f not in shown and not f.startswith(".")]
    assert not missing, _listed(sorted(missing))


def test_every_python_name_exists() -> None:
    """`data_platform.x.y.name(...)` in the pages: the module imports and has the name."""
    wrong = []
    for page in pages():
        for line in code_of(page.read_text()):
            for dotted in re.findall(r"(?<![\w./-])((?:data_platform|harness)(?:\.\w+)+)", line):
                parts = dotted.split(".")
                for cut in range(len(parts), 0, -1):
                    try:
                        target = importlib.import_module(".".join(parts[:cut]))
                    except ImportError:
                        continue
                    try:
                        for attribute in parts[cut:]:
                            target = getattr(target, attribute)
                    except AttributeError:
                        wrong.append(f"{_name(page)}: {dotted}")
                    break
                else:
                    wrong.append(f"{_name(page)}: {dotted} (no such module)")
    assert not wrong, _listed(wrong)


def test_every_setting_named_exists() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    families = {name.split("_")[0] for name in settings}
    wrong = set()
    for page in pages():
        for line in code_of(page.read_text()):
            for name in re.findall(r"(?<![\w-])([A-Z][A-Z0-9]*(?:_[A-Z0-9*<>]+)+)", line):
                if name.split("_")[0] not in families or name in NOT_SETTINGS:
                    continue
                prefix = re.split(r"[*<]", name)[0]
                if name not in settings and not (
                    prefix != name and any(s.startswith(prefix) for s in settings)
                ):
                    wrong.add(f"{_name(page)}: {name}")
    assert not wrong, _listed(sorted(wrong))


@pytest.mark.parametrize("page", [*pages(), *sorted((DOC / "adr").glob("*.md"))], ids=_name)
def test_every_link_leads_somewhere(page: Path) -> None:
    """Relative links name a file that exists, and an anchor a heading of it."""
    wrong = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            wrong.append(target)
        elif anchor and anchor not in _anchors(file):
            wrong.append(f"{target} (no such heading)")
    assert not wrong, _listed(wrong)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.*)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
