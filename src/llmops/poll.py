"""One way to wait: poll a probe until it holds, and say what was awaited when it does not.

Every wait in the harness (a cluster's API, a simulator's /health, a port
forward, an APIService, a scaled Deployment) is this loop; a probe raises
to stop waiting early (a process that exited cannot become ready).
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from llmops.errors import LlmopsError

T = TypeVar("T")


class PollTimeout(LlmopsError):
    """A wait ran out of time."""


def until(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (),
    describe: Callable[[], object] | None = None,
    error: Callable[[str], BaseException] = PollTimeout,
) -> T:
    """Call PROBE every INTERVAL seconds until it returns something truthy, and return that.

    Exceptions listed in RETRY_ON count as "not yet" (the last one is
    reported on timeout); any other exception ends the wait at once. On
    timeout raise ERROR naming WHAT, the last probe result or error and, if
    given, ``describe()`` of the state.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_error = ""
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except retry_on as exc:
            last_error = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = f"; last error: {last_error}" if last_error else f" (last probe: {last!r})" if last is not None else ""
    state = f"; state: {describe()}" if describe is not None else ""
    raise error(f"timed out after {timeout:.0f}s waiting for {what}{detail}{state}")


def http_ok(url: str, *, timeout: float = 2, insecure: bool = False) -> bool:
    """True when URL answers 200; False on any connection error or other status (for readiness probes)."""
    # loopback readiness only: a self-signed certificate is expected where insecure is asked for
    ctx = ssl._create_unverified_context() if insecure else None  # noqa: S323
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Repeat:
    """Call FN every INTERVAL seconds on a daemon thread until :meth:`stop`.

    A failing call does not end the loop: its exception is appended to
    ERRORS (timestamped), which the owner reads. For the harness's background
    followers of the API server (a gateway's Ready pods, Prometheus' targets).
    """

    def __init__(self, fn: Callable[[], object], interval: float, name: str, errors: list[str]) -> None:
        self._fn, self._interval, self._errors = fn, interval, errors
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Repeat:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._fn()
            except Exception as exc:  # noqa: BLE001 - keep following; surfaced through errors
                self._errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
