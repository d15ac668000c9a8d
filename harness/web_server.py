"""`data-platform web` as its own process, for the benchmark and the browser tests: on a
free loopback port, ready once it answers /healthz, stopped (killed if it must be) at
the end."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_server(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    output: IO[str] | int = subprocess.DEVNULL,
    start_seconds: float = 60,
) -> Iterator[str]:
    """`data-platform web --port <free> *args` with `env` in `cwd`, its stdout and stderr
    to `output`; yields its base URL (`http://127.0.0.1:<port>`) once /healthz answers 200.

    Raises RuntimeError when it exits or does not answer within `start_seconds`."""
    import requests

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "data_platform", "web", "--port", str(port), *args],
        env=env,
        cwd=cwd,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
