"""One computation shared by the requests that ask for the same thing at once (issue 26
item 8): 200 readers of the overview during a run cost one set of queries and one pooled
connection per wave, not 200. Nothing is kept once it is answered: a request that comes
after the computation ended starts a new one, so an answer is never older than the
request before it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class SingleFlight:
    """`run(key, compute)`: the first caller for `key` computes; callers for the same key
    while it runs wait for its answer (or its exception) instead of computing again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, Future] = {}

    def run(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return running.result()
        try:
            value = compute()
        except BaseException as exc:
            running.set_exception(exc)
            raise
        else:
            running.set_result(value)
            return value
        finally:
            with self._lock:
                del self._running[key]
