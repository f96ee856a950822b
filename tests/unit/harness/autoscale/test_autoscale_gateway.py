"""The scale-from-zero stand-in gateway: spreads requests over replicas, holds them while there is none, follows Ready pods."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from typing import Any

from llmops.autoscale.gateway import Gateway, ready_pod_addresses


class _SlowBackend(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that names itself in every answer after DELAY seconds."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name, self.delay, self.hits = name, delay, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.hits += 1
                time.sleep(outer.delay)
                data = outer.name.encode() + b":" + body
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with Gateway("m", 0, hold_timeout=3) as gw:
        yield gw


def _post(url: str, body: bytes = b"hello", timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metric(gw: Gateway, name: str) -> float:
    with urllib.request.urlopen(gw.url + "/gateway/metrics", timeout=5) as resp:  # noqa: S310 - loopback
        for line in resp.read().decode().splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing from /gateway/metrics")


def test_gateway_relays_request_body_and_answer_of_backend(gateway: Gateway) -> None:
    backend = _SlowBackend("a")
    try:
        gateway.set_backends([backend.address])
        assert _post(gateway.url, b"payload") == (200, b"a:payload")
    finally:
        backend.close()


def test_gateway_spreads_concurrent_requests_over_every_replica(gateway: Gateway) -> None:
    backends = [_SlowBackend(n, delay=0.3) for n in ("a", "b", "c")]
    try:
        gateway.set_backends([b.address for b in backends])
        threads = [threading.Thread(target=_post, args=(gateway.url,)) for _ in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # least-in-flight routing: nine concurrent slow requests land three per replica
        assert [b.hits for b in backends] == [3, 3, 3]
    finally:
        for b in backends:
            b.close()


def test_gateway_holds_requests_without_replica_and_counts_them_pending(gateway: Gateway) -> None:
    result: list[tuple[int, bytes]] = []
    sender = threading.Thread(target=lambda: result.append(_post(gateway.url)))
    sender.start()
    deadline = time.monotonic() + 2
    while _metric(gateway, "llmops_gateway_requests_pending") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(gateway, "llmops_gateway_requests_pending") == 1
    assert _metric(gateway, "llmops_gateway_requests_in_flight") == 1
    backend = _SlowBackend("late")
    try:
        gateway.set_backends([backend.address])  # a replica became ready: the held request goes there
        sender.join(5)
        assert result == [(200, b"late:hello")]
        assert _metric(gateway, "llmops_gateway_requests_pending") == 0
    finally:
        backend.close()


def test_gateway_answers_503_when_no_replica_appears_within_hold_timeout() -> None:
    with Gateway("m", 0, hold_timeout=0.5) as gw:
        status, body = _post(gw.url)
        assert status == 503
        assert b"no replica of m" in body


def test_gateway_forgets_a_held_request_when_its_client_hangs_up(gateway: Gateway) -> None:
    import socket

    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    deadline = time.monotonic() + 2
    while _metric(gateway, "llmops_gateway_requests_pending") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(gateway, "llmops_gateway_requests_pending") == 1
    sock.close()  # e.g. the load generator stopped: the activation metric must fall back to 0
    deadline = time.monotonic() + 2
    while _metric(gateway, "llmops_gateway_requests_in_flight") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(gateway, "llmops_gateway_requests_in_flight") == 0
    assert _metric(gateway, "llmops_gateway_requests_pending") == 0


def _pod(ip: str, *, ready: bool = True, deleting: bool = False, port: int = 8000, port_name: str = "http") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"p-{ip}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "engine", "ports": [{"name": port_name, "containerPort": port}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_ready_pod_addresses_keep_only_ready_pods_that_are_not_being_deleted_at_their_named_port() -> None:
    pods = [_pod("10.1.0.9"), _pod("10.1.0.3", port=9000), _pod("10.1.0.4", ready=False),
            _pod("10.1.0.5", deleting=True), _pod("10.1.0.6", port_name="metrics"),
            {"metadata": {"name": "pending"}, "spec": {}, "status": {}}]  # fmt: skip
    assert ready_pod_addresses(pods) == [("10.1.0.3", 9000), ("10.1.0.9", 8000)]
    assert ready_pod_addresses(pods, "metrics") == [("10.1.0.6", 8000)]
