"""Option decorators shared by commands."""

from __future__ import annotations

import click

from data_platform.settings import ZONES

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")

zone_option = click.option(
    "--zone",
    required=True,
    help=f"Storage zone: {', '.join(ZONES)}.",
)

prefix_option = click.option("--prefix", default="", help="Key prefix inside the zone.")
