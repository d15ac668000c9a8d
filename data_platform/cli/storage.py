"""`data-platform storage ...`: look into and seed the object store zones."""

from __future__ import annotations

from pathlib import Path

import click

from data_platform.cli.options import json_option, prefix_option, zone_option


@click.group()
def storage() -> None:
    """Object store zones (local directory or S3)."""


@storage.command()
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@zone_option
@prefix_option
@click.option("--overwrite", is_flag=True, help="Upload even objects with the same content.")
@click.option(
    "--force", is_flag=True, help="Land in incoming files that were ingested before (new loads)."
)
def upload(src_dir: Path, zone: str, prefix: str, overwrite: bool, force: bool) -> None:
    """Mirror the files under SRC_DIR into a zone; keys are paths relative to SRC_DIR.

    An object with the same content (checksum or bytes, never the size alone) is skipped.
    Into incoming, a file that was ingested before is refused, saying what landing it
    again would do (a new load; a new snapshot for a LOAD00000001), unless --force.

    \b
    Example:  data-platform storage upload sample_data/cubic/ods_qlik --zone incoming \\
                --prefix cubic/ods_qlik
    """
    from data_platform.storage.transfer import upload_tree

    check = None
    if zone == "incoming" and not force:
        from functools import partial

        from data_platform.loads.relanding import refuse_relanding
        from data_platform.run import all_sources

        check = partial(refuse_relanding, sources=all_sources())
    result = upload_tree(src_dir, zone, prefix=prefix, overwrite=overwrite, check=check)
    click.echo(f"uploaded {result.uploaded} file(s), skipped {result.skipped} already present")


@storage.command("ls")
@zone_option
@prefix_option
@json_option
def ls(zone: str, prefix: str, as_json: bool) -> None:
    """List objects in a zone, sorted by key.

    \b
    Example:  data-platform storage ls --zone incoming --prefix cubic/ods_qlik/
    """
    import json

    from data_platform.storage import get_zone

    objects = get_zone(zone).list(prefix)
    for info in objects:
        if as_json:
            record = {
                "key": info.key,
                "size": info.size,
                "last_modified": info.last_modified.isoformat(),
            }
            click.echo(json.dumps(record))
        else:
            stamp = info.last_modified.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{stamp} {info.size:>12} {info.key}")
