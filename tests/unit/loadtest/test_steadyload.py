"""llmops.loadtest.steadyload: what the upgrade path's streaming client counts as a failure, a resend and a gap.

A real HTTP server (aiohttp.web on 127.0.0.1, port picked by the kernel)
answers the way a draining router or engine can: a whole stream, a stream
cut before ``[DONE]``, a 503, a connection closed before any response.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from llmops.loadtest import steadyload


class _Server:
    """MODE per request, taken from a list the test sets (the last one repeats)."""

    def __init__(self) -> None:
        self.modes: list[str] = ["ok"]
        self.seen = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _mode(self) -> str:
        mode = self.modes[min(self.seen, len(self.modes) - 1)]
        self.seen += 1
        return mode

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        mode = self._mode()
        if mode == "close":
            assert request.transport is not None
            request.transport.close()  # nothing answered: what a closed keep-alive connection looks like
            await asyncio.sleep(0.05)
            return web.Response(status=500)
        if mode == "503":
            return web.json_response({"error": {"message": "server is shutting down"}}, status=503)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, pause in enumerate((0.02, 0.01, 0.15, 0.01)):
            await asyncio.sleep(pause)
            chunk = {"choices": [{"delta": {"content": f"t{i}"}}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if mode == "cut":
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop.run_until_complete(web.SockSite(runner, sock).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


def _load(server: _Server, **kw: object) -> steadyload.SteadyLoad:
    return steadyload.SteadyLoad(f"http://127.0.0.1:{server.port}", "m", request_timeout_s=5, **kw)  # type: ignore[arg-type]


def test_a_whole_stream_is_ok_and_its_longest_gap_is_the_slowest_token(server: _Server) -> None:
    out = _load(server).once()
    assert out.ok, out.error
    assert len(out.token_times) == 4
    assert 0.14 <= out.longest_itl < 1.0
    assert out.longest_wait == max(out.ttft or 0, out.longest_itl)


def test_a_stream_cut_before_done_fails_and_is_never_resent(server: _Server) -> None:
    server.modes = ["cut", "ok"]
    out = _load(server).once()
    assert not out.ok and not out.retried
    assert "[DONE]" in (out.error or "") or "after HTTP 200" in (out.error or ""), out.error
    assert server.seen == 1


def test_a_503_fails_and_is_never_resent(server: _Server) -> None:
    server.modes = ["503", "ok"]
    out = _load(server).once()
    assert out.error is not None and out.error.startswith("HTTP 503")
    assert server.seen == 1


def test_a_connection_closed_before_any_response_is_resent_once_on_a_new_connection_and_counted(server: _Server) -> None:
    server.modes = ["close", "ok"]
    out = _load(server).once()
    assert out.ok, out.error
    assert len(out.retried) == 1 and "before any response" in out.retried[0]


def test_a_second_closed_connection_fails_the_request(server: _Server) -> None:
    server.modes = ["close", "close", "ok"]
    out = _load(server).once()
    assert not out.ok and len(out.retried) == 1
    assert "before any response" in (out.error or "")


def test_the_load_runs_until_stopped_and_sums_failures_and_resends(server: _Server) -> None:
    server.modes = ["ok", "close", "ok", "503", "ok"]
    load = _load(server, concurrency=2).start()
    while server.seen < 10:
        threading.Event().wait(0.05)
    summary = load.stop()
    assert summary.requests >= 5
    assert summary.failed == 1 and "HTTP 503" in summary.failures[0]
    assert summary.connection_retries == 1
    assert summary.as_dict()["failed_requests"] == 1
    assert summary.longest_gap_s >= 0.14
