"""Secrets out of every alert: the value of each SecretStr setting, the password of
each `*_url` setting (DATABASE_URL, ...) and of any URL in the text, AWS credentials from
the environment, and URL query strings (signed links) are replaced before an alert is
stored, logged or sent."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from data_platform.http import redact
from data_platform.settings import Settings

# `scheme://user:password@`: the password, up to the `@` (an unencoded `@` in a password
# is refused by the engine, see db.engine._check_url).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/?#@\s]*:)[^@\s]+@")
_ENV_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def secrets(settings: Settings) -> tuple[str, ...]:
    """Every secret the platform knows of, longest first (a secret holding another is
    replaced whole)."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.add(value.get_secret_value())
        elif isinstance(value, str) and name.endswith("_url") and "@" in value:
            # DATABASE_URL, TOTESYS_DATABASE_URL, ...: their passwords.
            try:
                password = urlsplit(value).password
            except ValueError:  # unparsable: the pattern in `scrub` still masks it
                password = None
            if password:
                found.update({password, unquote(password)})
    found.update(os.environ[name] for name in _ENV_SECRETS if os.environ.get(name))
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, known: Iterable[str]) -> str:
    """`text` with URL passwords, URL query strings and the `known` secrets as `***`."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return redact(text, *known)


def log_scrub(settings: Settings) -> Callable[[str], str]:
    """`scrub` with the secrets of `settings`, for `log.configure`: every log line."""
    known = secrets(settings)
    return lambda text: scrub(text, known)
