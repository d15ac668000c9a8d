"""The documents are true: the generated ones equal their generators' output, and what the
README and doc/ pages name (commands and their options, repository paths, settings, make
targets, links) exists. The README's and doc pages' marked blocks run in test_readme.py."""

from __future__ import annotations

import re
from pathlib import Path

from data_platform.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_the_configuration_reference_is_current() -> None:
    from data_platform.cli.settings_reference import render

    assert (REPO / "doc" / "configuration.md").read_text() == render(), (
        "doc/configuration.md is stale: "
        "python -m data_platform.cli.settings_reference > doc/configuration.md"
    )


def test_every_setting_has_a_description_that_renders() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description= (doc/configuration.md)"
        # Markdown would take <zone> outside a code span for an HTML tag and drop it.
        outside_code = re.sub(r"`[^`]*`", "", field.description)
        assert "<" not in outside_code, f"{name}: put <...> in backticks"
