"""The operations page under many readers (issue 26 item 8): `data-platform web` as its own
process (WEB_WORKERS) on a data home the demo filled, first one reader at a time (the
baseline), then 200 at once (curl's parallel transfers) on the overview, its API, the
runs list and /metrics: alone, then during `run` passes that have work (new totesys rows
from the simulator: extract, ingest, the dbt build, verify). Prints the latencies and the
pass's time with and without the readers; the target is a p95 under one second with no
error, and a pass the readers do not slow."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.web_server import web_server

PATHS = ("/", "/api/overview", "/runs", "/metrics")
# Seconds after a pass starts when a wave of readers arrives: while it lands and ingests,
# while dbt builds, while it verifies (a pass of the demo's home takes about 7 s here).
WAVES_AT = (0.3, 2.5, 5.0)
PROJECT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    """The commands' environment: none of the caller's platform settings (a real totesys
    database, portal, broker or alert channel must never see the bench), the bench's
    home, and the totesys tables the only ones a pass verifies (the demo's pedestrian
    portal and Kafka broker end with the demo)."""
    from data_platform.settings import Settings

    platform = {name.upper() for name in Settings.model_fields}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in platform and not k.startswith(("DATABASE_", "S3_"))
    }
    return {
        **env,
        "DATA_PLATFORM_HOME": str(home),
        "LOG_LEVEL": "WARNING",
        "VERIFY_ON_RUN": "totesys",
        "PYTHONPATH": str(PROJECT),
    }


def demo_home(home: Path) -> Path:
    """`home` filled by the demo (`python -m harness demo`) unless a demo finished there
    already. The commands run in `home`, so no `.env` of the checkout is read.

    Raises RuntimeError when the demo fails."""
    done_marker = home / "bench-demo.done"
    if not done_marker.exists():
        home.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "harness", "demo"],
            env=_env(home), cwd=home, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the demo failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        done_marker.touch()
    return home


def _readers(base: str, clients: int) -> list[tuple[int, float]]:
    """`clients` readers at once, as (HTTP status, seconds) each; a reader without an
    answer is status 0 (curl's 000). curl's parallel transfers as the readers: a C
    client, so the readers' own CPU takes little from the server's on the same machine."""
    config = "".join(
        f'url = "{base}{PATHS[i % len(PATHS)]}"\noutput = "/dev/null"\n' for i in range(clients)
    )
    done = subprocess.run(
        ["curl", "-s", "-Z", "--parallel-max", str(clients), "--max-time", "120", "-K", "-",
         "-w", "%{http_code} %{time_total}\n"],
        input=config, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    answers = [(int(code), float(took)) for code, took in map(str.split, done.stdout.splitlines())]
    return answers + [(0, 120.0)] * (clients - len(answers))


def _pass(
    home: Path, readers_at: tuple[float, ...] = (), base: str = "", clients: int = 0
) -> tuple[float, list[tuple[int, float]]]:
    """One `data-platform run` pass after a few seconds of the totesys simulator, with a
    wave of `clients` readers `readers_at` seconds after it starts while it still runs;
    (its seconds, the readers' answers). Raises RuntimeError when the pass fails, applies
    no totesys row or does not end within 10 minutes (it is killed then)."""
    env = _env(home)
    subprocess.run(
        [sys.executable, "-m", "harness", "totesys", "simulate", "--minutes", "0.05",
         "--rate", "20"],
        env=env, cwd=home, capture_output=True, check=True,
    )  # fmt: skip
    began = time.monotonic()
    ran = subprocess.Popen(
        [sys.executable, "-m", "data_platform", "run"],
        env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    ended: list[tuple[float, str]] = []

    def wait() -> None:  # its end, as it happens, and its output read as it comes
        output, _ = ran.communicate()
        ended.append((time.monotonic(), output))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    answers: list[tuple[int, float]] = []
    try:
        for at in readers_at:
            time.sleep(max(0.0, began + at - time.monotonic()))
            if ended:
                break  # the pass is over: later readers would not be during it
            answers += _readers(base, clients)
        waiter.join(timeout=600)
    finally:
        if ran.poll() is None:
            ran.kill()
        waiter.join(timeout=30)
    if not ended:
        raise RuntimeError("the bench's pass did not end within 10 minutes")
    finished, output = ended[0]
    applied = re.search(r"^totesys: .* (\d+) row\(s\) applied", output, re.MULTILINE)
    if ran.returncode != 0 or applied is None or applied.group(1) == "0":
        raise RuntimeError(f"the bench's pass applied no new totesys row:\n{output}")
    return finished - began, answers


def _latencies(answers: list[tuple[int, float]]) -> dict[str, float]:
    seconds = sorted(s for _, s in answers)
    return {
        "p50": statistics.median(seconds),
        "p95": seconds[int(0.95 * (len(seconds) - 1))],
        "max": seconds[-1],
        "errors": sum(code != 200 for code, _ in answers),
        "answers": len(answers),
    }


def web_bench(home: Path, clients: int = 200, passes: int = 2) -> dict[str, object]:
    """Latencies in seconds on the demo's data in `home` (filled first when empty):
    `single` (median of one reader at a time), `cold`, `alone` and `during` (p50, p95,
    max, errors, answers of `clients` readers at once; `cold`: the first after the
    server answered /healthz; `during`: a wave at each of WAVES_AT seconds into each of
    `passes` passes), and `pass_alone` / `pass_read` (the median
    seconds of a pass without and with the readers)."""
    import requests

    demo_home(home)
    with web_server(env=_env(home), cwd=home) as base:
        cold = _readers(base, clients)  # the first readers after a start
        single = []
        for i in range(2 * len(PATHS)):
            began = time.monotonic()
            requests.get(base + PATHS[i % len(PATHS)], timeout=60).raise_for_status()
            single.append(time.monotonic() - began)
        alone = _readers(base, clients)
        pass_alone, pass_read, during = [], [], []
        for _ in range(passes):  # alternated, so the machine's drift falls on both
            pass_alone.append(_pass(home)[0])
            seconds, answers = _pass(home, WAVES_AT, base, clients)
            pass_read.append(seconds)
            during += answers
    return {
        "clients": clients,
        "single": statistics.median(single),
        "cold": _latencies(cold),
        "alone": _latencies(alone),
        "during": _latencies(during),
        "pass_alone": statistics.median(pass_alone),
        "pass_read": statistics.median(pass_read),
        "passes": passes,
    }


def report_web(figures: dict) -> None:
    print()
    print(
        f"operations page, {figures['clients']} readers at once (overview, API, runs, "
        "metrics) on the demo's data:"
    )
    print(f"  one reader at a time: median {figures['single']:.3f} s")
    for key, label in (
        ("cold", "at once, just started"),
        ("alone", "at once, no pass"),
        ("during", "at once, during passes"),
    ):
        f = figures[key]
        print(
            f"  {label + ':':<24} p50 {f['p50']:.3f} s, p95 {f['p95']:.3f} s, max "
            f"{f['max']:.3f} s, {f['errors']} error(s) in {f['answers']}   "
            "(target: p95 < 1 s, no error)"
        )
    print(
        f"  a `run` pass (median of {figures['passes']}): {figures['pass_alone']:.2f} s alone, "
        f"{figures['pass_read']:.2f} s with {len(WAVES_AT)} waves of readers "
        f"({figures['pass_read'] / figures['pass_alone']:.2f}x)"
    )
