"""HTML rendering: one Jinja2 environment, autoescaped, strict about undefined names,
and with every printed value passed through `finalize`, which masks the platform's known
secrets (`data_platform.alerts.scrub.secrets`: SecretStr settings, URL passwords) however
a value got there. Filters put times in the operator's zone and numbers in a readable form.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
DASH = "\u2014"


def mask(text: str, known: tuple[str, ...]) -> str:
    """`text` with each known secret replaced by ***."""
    for secret in known:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def number(value: int | float | None) -> str:
    """12345678 -> 12,345,678; None -> a dash."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def size(value: int | None) -> str:
    """Bytes, readable: 512 B, 1.2 KB, 3.4 MB (decimal units)."""
    if value is None:
        return DASH
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """0.0123 -> 12 ms; 5.2 -> 5.2 s; 184 -> 3 min 4 s; 7500 -> 2 h 5 min; days too."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def hours(value: float) -> str:
    """24.0 -> 24 h; 1.5 -> 1.5 h."""
    return f"{value:g} h"


class Renderer:
    """Renders the templates with the operator's zone and the secrets to mask."""

    def __init__(self, zone: ZoneInfo, known_secrets: tuple[str, ...]) -> None:
        self.zone = zone
        self.known = known_secrets
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            finalize=self.finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            when=self.when,
            iso=self.iso,
            num=number,
            size=size,
            duration=duration,
            hours=hours,
            path=lambda value: quote(str(value), safe=""),
        )
        self.env = env

    def finalize(self, value: object) -> object:
        """Every printed value: None as a dash, secrets masked (also in Markup)."""
        if value is None:
            return DASH
        if isinstance(value, Markup):  # already HTML: the secrets as they were escaped too
            escaped = tuple(str(escape(secret)) for secret in self.known)
            return Markup(mask(str(value), (*self.known, *escaped)))
        if isinstance(value, bool | int | float):
            return value
        return mask(str(value), self.known)

    def when(self, value: datetime | None, seconds: bool = True) -> str:
        """An aware time in the operator's zone (`2026-12-01 14:03:05 AEDT`); a naive
        one (a vendor's clock) as it is."""
        if value is None:
            return DASH
        shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        if value.tzinfo is None:
            return value.strftime(shape)
        return value.astimezone(self.zone).strftime(f"{shape} %Z")

    def iso(self, value: datetime | None) -> str:
        """For a <time datetime=...> attribute."""
        return value.isoformat() if value else ""

    def compile_all(self) -> None:
        """Compile every template now (Jinja keeps them), not in the first reader's time."""
        for name in self.env.list_templates():
            self.env.get_template(name)

    def render(self, template: str, **context: object) -> str:
        return self.env.get_template(template).render(**context)
