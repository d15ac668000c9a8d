"""A local stand-in for the DMAP API, for the demo: serves the listing and the files of
`sample_data/cubic/dmap_api/` (see its README) on 127.0.0.1 and a free port.

    with demo_api(round_number=1) as base_url:
        ...  # CUBIC_DMAP_BASE_URL=base_url; any non-empty API key

Like the vendor's API it wants an `apikey` header, pages with `limit`/`offset` and honours
only the date part of `last_updated` (so the client's own filter matters). Unlike it, its
download links are `http://127.0.0.1:<port>/files/...` (a local server cannot sign https
links): fetch with `allow_http_downloads=True`, which is for this server and tests only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.security import safe_join
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data" / "cubic" / "dmap_api"


def load_rounds(sample_dir: Path = SAMPLE_DIR) -> tuple[str, list[list[dict[str, str]]]]:
    """(feed path, rounds) from `<sample_dir>/rounds.json`; each round a list of entries
    with dataset_id, start_date, end_date, last_updated and file (relative to the dir)."""
    spec = json.loads((sample_dir / "rounds.json").read_text())
    return spec["feed"], spec["rounds"]


def published(rounds: list[list[dict[str, str]]], round_number: int) -> list[dict[str, str]]:
    """What the API lists at `round_number` (from 1): the entries of rounds 1..N, the
    latest per dataset_id, oldest last_updated first."""
    if not 1 <= round_number <= len(rounds):
        raise ValueError(f"round {round_number}: the sample has rounds 1 to {len(rounds)}")
    latest: dict[str, dict[str, str]] = {}
    for entries in rounds[:round_number]:
        for entry in entries:
            latest[entry["dataset_id"]] = entry
    return sorted(latest.values(), key=lambda e: e["last_updated"])


class DemoApi:
    """The WSGI app: `GET <feed>?last_updated&limit&offset` and `GET /files/<file>`."""

    def __init__(self, sample_dir: Path, round_number: int, api_key: str | None) -> None:
        self.sample_dir = sample_dir
        self.feed, rounds = load_rounds(sample_dir)
        self.entries = published(rounds, round_number)
        self.dataset_type = self.feed.rsplit("/", 1)[-1]
        self.api_key = api_key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.path == self.feed:
            return self.listing(request)
        if request.path.startswith("/files/"):
            return self.file(request.path.removeprefix("/files/"))
        return _json({"success": False, "message": "not found"}, 404)

    def listing(self, request: Request) -> Response:
        key = request.headers.get("apikey")
        if not key or (self.api_key is not None and key != self.api_key):
            return _json({"success": False, "message": "invalid API key"}, 401)
        since = request.args.get("last_updated")
        try:
            limit = min(int(request.args.get("limit", 100)), 100)
            offset = int(request.args.get("offset", 0))
            day = datetime.fromisoformat(since).date() if since else None
        except ValueError:
            return _json({"success": False, "message": "bad query"}, 400)
        entries = [
            e
            for e in self.entries
            if day is None or datetime.fromisoformat(e["last_updated"]).date() >= day
        ]
        results = [
            {
                "id": self.dataset_type,
                "dataset_id": e["dataset_id"],
                # Looks signed, like the vendor's links; nothing checks it.
                "url": f"{request.host_url}files/{e['file']}?signature=demo",
                "start_date": e["start_date"],
                "end_date": e["end_date"],
                "last_updated": e["last_updated"],
            }
            for e in entries[offset : offset + limit]
        ]
        return _json({"success": True, "results": results})

    def file(self, name: str) -> Response:
        path = safe_join(str(self.sample_dir), name)
        if path is None or not Path(path).is_file() or not name.endswith(".csv.gz"):
            return Response("not found", 404)
        return Response(Path(path).read_bytes(), mimetype="application/gzip")


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (the demo prints its own steps)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def demo_api(
    round_number: int = 1, *, sample_dir: Path | None = None, api_key: str | None = None
) -> Iterator[str]:
    """Serve the sample API as published at `round_number` (1: two datasets; 2: one of
    them re-issued) until the block ends; yields its base URL `http://127.0.0.1:<port>`.

    Listings want a non-empty `apikey` header (`api_key` given: that one). Raises
    ValueError for a round the sample does not have."""
    app = DemoApi(sample_dir or SAMPLE_DIR, round_number, api_key)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="dmap-demo-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
