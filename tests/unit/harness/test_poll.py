"""llmops.poll: the one wait loop of the harness."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from llmops import poll
from llmops.errors import LlmopsError


def test_until_returns_the_first_truthy_probe_result() -> None:
    answers = iter([None, 0, "ready"])
    assert poll.until("x", lambda: next(answers), timeout=5, interval=0) == "ready"


def test_timeout_names_what_was_awaited_the_last_probe_and_the_state() -> None:
    with pytest.raises(poll.PollTimeout, match=r"waiting for pods Ready \(last probe: \[\]\); state: 0/2 ready"):
        poll.until("pods Ready", lambda: [], timeout=0.05, interval=0.01, describe=lambda: "0/2 ready")


def test_retried_errors_count_as_not_yet_and_the_last_one_is_reported() -> None:
    def flaky() -> bool:
        raise LlmopsError("connection refused")

    with pytest.raises(poll.PollTimeout, match="last error: connection refused"):
        poll.until("api", flaky, timeout=0.05, interval=0.01, retry_on=(LlmopsError,))


def test_other_errors_stop_the_wait_at_once() -> None:
    calls = []

    def exited() -> bool:
        calls.append(1)
        raise LlmopsError("process exited with 1")

    with pytest.raises(LlmopsError, match="exited"):
        poll.until("health", exited, timeout=30, interval=0.01)
    assert len(calls) == 1


def test_the_error_type_is_the_callers_choice() -> None:
    with pytest.raises(AssertionError, match="timed out after 0s waiting for y"):
        poll.until("y", lambda: False, timeout=0.01, interval=0.01, error=AssertionError)


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_http_ok_is_true_only_for_200(server: str) -> None:
    assert poll.http_ok(f"{server}/ok")
    assert not poll.http_ok(f"{server}/starting")
    assert not poll.http_ok("http://127.0.0.1:9/closed", timeout=0.5)


def test_repeat_keeps_calling_after_a_failure_records_it_and_stops_on_request() -> None:
    calls: list[int] = []
    errors: list[str] = []

    def fn() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("api server went away")

    runner = poll.Repeat(fn, 0.01, "test-repeat", errors).start()
    poll.until("three calls", lambda: len(calls) >= 3, timeout=5, interval=0.01)
    runner.stop()
    stopped_at = len(calls)
    time.sleep(0.05)
    assert len(calls) == stopped_at, "the loop went on after stop()"
    assert len(errors) == 1 and errors[0].endswith("api server went away")
