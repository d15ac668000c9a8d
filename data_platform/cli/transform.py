"""`data-platform transform`: build the dbt models of `transform/` and run their tests."""

from __future__ import annotations

import click

from data_platform.alerts.hooks import alert_transform


@click.command()
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="SELECTOR",
    help="dbt node selector (repeatable), e.g. pedestrian_top10_daily+; default: all.",
)
@click.option(
    "--vars",
    "vars_text",
    metavar="YAML",
    help="dbt vars as dbt's --vars takes them, a YAML or JSON mapping, e.g. "
    "'{footfall_before_start: 2023-01-01}'; they override TRANSFORM_VARS name by name.",
)
@click.option(
    "--freshness",
    is_flag=True,
    help="Check the sources' freshness instead (dbt source freshness, on the landing "
    "times of the platform's loads).",
)
def transform(select: tuple[str, ...], vars_text: str | None, freshness: bool) -> None:
    """Build the dbt models (schema analytics) and run their data tests (`dbt build`).

    \b
    Runs on the platform's database (DATABASE_URL, else the embedded server); dbt's
    target/ and logs/ go under DATA_PLATFORM_HOME/dbt. Prints every model and test
    with its status; exits 1 when a model failed or a data test found failing rows (a test
    of severity warn, e.g. counts of sensors without a location row, only warns); exits 2
    when --select matches nothing or --vars is not a YAML mapping. Model variables (the
    yearly-change windows footfall_before_start and footfall_after_start) come from
    --vars, else TRANSFORM_VARS, else transform/dbt_project.yml.

    \b
    Examples:
      data-platform transform
      data-platform transform --select pedestrian_top10_daily+
      data-platform transform -s stg_pedestrian__hourly_counts -s pedestrian_daily_totals
      data-platform transform -s pedestrian_yearly_change+ \\
        --vars '{footfall_before_start: 2023-01-01, footfall_after_start: 2024-01-01}'
      data-platform transform --freshness
    """
    from data_platform.transform import TransformError, run_transform
    from data_platform.transform.dbt import parse_vars

    if vars_text is not None:
        try:
            parse_vars(vars_text)  # before dbt starts: a usage error, exit 2
        except TransformError as exc:
            raise click.BadParameter(
                str(exc).removeprefix("--vars "), param_hint="--vars"
            ) from None
    command = "freshness" if freshness else "build"
    result = run_transform(list(select) or None, vars=vars_text, command=command)
    if select and not result.nodes:
        raise click.BadParameter(
            f"{' '.join(select)} matches no model or test of transform/", param_hint="--select"
        )
    alert_transform(result.nodes)
    click.echo(result.render())
    if not result.ok:
        failed = "; ".join(node.describe() for node in result.failed) or "dbt reported a failure"
        click.echo(f"Error: transform failed: {failed}", err=True)
        raise SystemExit(1)
