"""Root command: options every command shares, and errors as one `Error:` line."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from data_platform import __version__
from data_platform.errors import one_line

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class AppGroup(click.Group):
    """Turns every failure into one line on stderr and a non-zero exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # Not standalone, click returns the code of a ctx.exit() instead of exiting.
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.exit(code if isinstance(code, int) else 0)
        except click.UsageError as exc:
            # One line, naming the argument and what is accepted, and where help is.
            where = exc.ctx.command_path if exc.ctx else prog_name or "data-platform"
            click.echo(f"Error: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                traceback.print_exc()
            message, code = one_line(exc)
            click.echo(f"Error: {message}", err=True)
            ctx.exit(code)


@click.group(cls=AppGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="data-platform")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Land vendor files, track every load, keep current-state tables in Postgres.

    \b
    Examples:
      data-platform run                       # scan and ingest every source
      data-platform db upgrade                # migrate the metadata database
      data-platform storage ls --zone incoming
      data-platform status
    """
    from data_platform import log
    from data_platform.alerts import register_alerts
    from data_platform.alerts.scrub import log_scrub
    from data_platform.settings import get_settings

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    settings = get_settings()
    log.configure(
        "DEBUG" if debug else settings.log_level, settings.log_format, log_scrub(settings)
    )
    # Alerts hear the load machinery's events (loads.hooks): it never imports them.
    register_alerts()


def _register() -> None:
    from data_platform.cli import (
        db,
        deploy,
        dmap,
        glue,
        kafka,
        loads,
        pedestrian,
        qlik,
        retry,
        run,
        status,
        storage,
        totesys,
        verify,
        web,
    )
    from data_platform.cli.transform import transform

    cli.add_command(qlik.group)
    cli.add_command(dmap.group)
    cli.add_command(kafka.group)
    cli.add_command(pedestrian.group)
    cli.add_command(totesys.group)
    cli.add_command(run.run)
    cli.add_command(retry.retry)
    cli.add_command(loads.loads)
    cli.add_command(db.db)
    cli.add_command(storage.storage)
    cli.add_command(status.status)
    cli.add_command(verify.verify)
    cli.add_command(transform)
    cli.add_command(glue.glue)
    cli.add_command(deploy.deploy)
    cli.add_command(web.web)


_register()


def main() -> None:
    sys.exit(cli.main(prog_name="data-platform"))


def run_standalone(group: str, command: str) -> None:
    """Entry for `python -m data_platform.batch.<source>.<command>` modules: the same
    command, logging and error handling as `data-platform <group> <command>`."""
    args = sys.argv[1:]
    root = [a for a in args if a == "--debug"]
    rest = [a for a in args if a != "--debug"]
    name = command.replace("_", "-")
    sys.exit(cli.main([*root, group, name, *rest], prog_name=f"python -m ...{command}"))


if __name__ == "__main__":
    main()
