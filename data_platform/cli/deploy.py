"""`data-platform deploy ...`: promote code to AWS."""

from __future__ import annotations

import click

from data_platform.cli.options import json_option


@click.group()
def deploy() -> None:
    """Promote code to AWS (needs the zones on S3 and AWS credentials)."""


@deploy.command("glue")
@click.option("--apply", "apply_changes", is_flag=True, help="Make the changes (default: plan).")
@click.option(
    "--role",
    metavar="ARN",
    help="IAM role the Glue jobs run as; needed to create a job, kept when omitted.",
)
@json_option
def glue(apply_changes: bool, role: str | None, as_json: bool) -> None:
    """Upload aws/s3/ and a zip of data_platform to the operations zone; create or update
    the Glue jobs (Glue 5.0, --ENV from the settings). Without --apply: print the plan and
    change nothing.

    \b
    Examples:
      data-platform deploy glue
      data-platform deploy glue --apply --role arn:aws:iam::123456789012:role/glue-jobs
    """
    import json

    from data_platform.jobs.deploy import apply_glue_deploy, plan_glue_deploy

    plan = plan_glue_deploy(role=role)
    if apply_changes:
        apply_glue_deploy(plan)
    if as_json:
        click.echo(json.dumps({**plan.to_dict(), "applied": apply_changes}, indent=2))
        return
    for line in plan.lines():
        click.echo(line)
    if apply_changes:
        click.echo(f"applied {plan.changes} change(s) to {plan.target}")
    else:
        click.echo(f"{plan.changes} change(s) planned for {plan.target}; --apply makes them")
