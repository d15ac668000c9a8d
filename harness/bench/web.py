"""The operations page under many readers (issue 26 item 8): `data-platform web` as its own
process (WEB_WORKERS) on the bench's data home, first one reader at a time (the
baseline), then 200 at once (curl's parallel transfers) on the overview, its API, the
runs list and /metrics. Prints the latencies; the target is a p95 under one second with
no error."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PATHS = ("/", "/api/overview", "/runs", "/metrics")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_bench(home: Path, clients: int = 200) -> dict[str, float]:
    """Latencies in seconds: `single` (median of one reader at a time), `p50`, `p95`,
    `max` of `clients` readers at once, and `errors` (answers other than 200)."""
    import requests

    port = _free_port()
    env = {**os.environ, "DATA_PLATFORM_HOME": str(home), "LOG_LEVEL": "WARNING"}
    env = {k: v for k, v in env.items() if not k.startswith(("DATABASE_", "S3_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "data_platform", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.2)
        single = []
        for i in range(2 * len(PATHS)):
            began = time.monotonic()
            requests.get(base + PATHS[i % len(PATHS)], timeout=60).raise_for_status()
            single.append(time.monotonic() - began)
        # curl's parallel transfers as the readers: a C client, so the readers' own CPU
        # takes little from the server's on the same machine.
        config = "".join(
            f'url = "{base}{PATHS[i % len(PATHS)]}"\noutput = "/dev/null"\n' for i in range(clients)
        )
        done = subprocess.run(
            ["curl", "-s", "-Z", "--parallel-max", str(clients), "-K", "-",
             "-w", "%{http_code} %{time_total}\n"],
            input=config, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        answers = [
            (int(code), float(took)) for code, took in map(str.split, done.stdout.splitlines())
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    seconds = sorted(s for _, s in answers)
    return {
        "single": statistics.median(single),
        "p50": statistics.median(seconds),
        "p95": seconds[int(0.95 * (len(seconds) - 1))],
        "max": seconds[-1],
        "errors": sum(code != 200 for code, _ in answers),
        "clients": clients,
    }


def report_web(figures: dict[str, float]) -> None:
    print()
    print(
        f"operations page, {figures['clients']:.0f} readers at once (overview, API, runs, metrics):"
    )
    print(
        f"  one at a time: median {figures['single']:.3f} s; at once: p50 {figures['p50']:.3f} s, "
        f"p95 {figures['p95']:.3f} s, max {figures['max']:.3f} s, {figures['errors']:.0f} "
        "error(s)   (target: p95 < 1 s, no error)"
    )
