"""`data-platform status`: loads by status per table, the latest error."""

from __future__ import annotations

import click

from data_platform.cli.options import json_option


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Per source table: loads by status and the latest error.

    \b
    Example:  data-platform status --json
    """
    from data_platform.status import platform_status

    report = platform_status()
    if as_json:
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(report.render())
