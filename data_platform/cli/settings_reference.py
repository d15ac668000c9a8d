"""The configuration reference (doc/configuration.md), generated from the settings class.

    .venv/bin/python -m data_platform.cli.settings_reference > doc/configuration.md

Every setting is a field of `data_platform.settings.Settings`; its environment variable,
type, constraints, default and description come from the field itself, so the document
cannot drift from the code (a test regenerates it and compares).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from data_platform.settings import Settings

# Plain names for the annotations the settings use; anything else is shown as written.
_TYPE_NAMES: dict[object, str] = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "true/false",
    Path: "path",
    SecretStr: "secret text (masked)",
}

_BOUNDS = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "<="),
)


def type_text(annotation: object) -> str:
    """`str | None` -> "text", `Literal["a", "b"]` -> "one of `a`, `b`",
    `dict[str, float]` -> "JSON object of text to number"."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(type_text(part) for part in parts)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_text(typing.get_args(annotation)[0])
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"JSON object of {type_text(key)} to {type_text(value)}"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def constraints_text(field: FieldInfo) -> str:
    """The field's bounds and pattern, e.g. ">= 0, <= 366"; empty when it has none."""
    found = []
    for item in field.metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(item, kind):
                found.append(f"{sign} {getattr(item, attribute)}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            found.append(f"matching `{pattern}`")
    return ", ".join(found)


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in `.env`: "unset" for None, "empty" for ""."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """doc/configuration.md: one row per setting, in the order the class declares them."""
    lines = [
        "# Configuration",
        "",
        "Generated from `data_platform/settings.py` by "
        "`python -m data_platform.cli.settings_reference`; do not edit.",
        "",
        "Every setting is an environment variable, or a line of a `.env` file in the working",
        "directory (the environment wins); names are case-insensitive. `.env.template` lists",
        "every one with its default. With nothing set, the platform runs on an embedded",
        "PostgreSQL and a local directory store under `DATA_PLATFORM_HOME`. An invalid value",
        "stops every command with exit code 2, naming the setting and what it accepts (a",
        "secret's value is never echoed); secret settings and URL passwords are masked",
        "wherever they are printed or logged.",
        "",
        "| Variable | Type | Default | Description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        kind = type_text(field.annotation)
        bounds = constraints_text(field)
        if bounds:
            kind += f", {bounds}"
        cells = [f"`{name.upper()}`", kind, default_text(field), field.description or ""]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
