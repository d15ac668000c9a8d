"""The CLI reference (doc/cli.md), generated from the commands' own --help.

    .venv/bin/python -m data_platform.cli.reference > doc/cli.md

A test regenerates it and compares, so the document cannot drift from the code.
"""

from __future__ import annotations

import click

from data_platform.cli.main import cli


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(command.commands[name], [*path, name])
    return found


def render() -> str:
    parts = [
        "# `data-platform` command reference",
        "",
        "Generated from `--help` by `python -m data_platform.cli.reference`; do not edit.",
        "",
    ]
    for path, command in _walk(cli, ["data-platform"]):
        name = " ".join(path)
        with click.Context(
            command, info_name=name, terminal_width=100, help_option_names=["-h", "--help"]
        ) as ctx:
            help_text = command.get_help(ctx)
        parts += [f"## {name}", "", "```", help_text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
