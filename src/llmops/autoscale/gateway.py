"""A loopback HTTP gateway that holds a model's requests while it has no replica.

A stand-in for the holding component the product still lacks (issue #14):
the chart's front door, the vLLM Router, cannot hold a request for a model
that has zero workers -- it answers at once (404 for a model it has no
worker of in its multi-model mode, 503 "No available workers" otherwise;
see docs/autoscaling.md). Scale from zero needs something that keeps the
request and exports a series while no engine pod exists, like Knative's
activator or the KEDA HTTP add-on's interceptor. This gateway does that
for the autoscaling e2e's scale-from-zero model (and the benchmark's
models that start at zero): it *holds* requests for up to ``hold_timeout``
seconds while the model has no Ready pod, exports the number it holds and
forwards on ``/gateway/metrics`` (``llmops_gateway_requests_pending``,
``..._in_flight``, ``..._total``) -- the series that exists while zero
engine pods run, which scale-from-zero activation needs (vLLM's own
metrics vanish with the last pod) -- and sends each request to the Ready
pod with the fewest requests in flight (ties: round robin), one request per
backend connection.

The backends are the real engine pods on the local cluster's real node, by
pod IP: :class:`ReadyPods` reads the model's Ready pods from the API server
(as a Service's endpoints would list them) and hands them to the gateway.

Responses are relayed byte for byte (SSE streams included) and the client
connection is closed after each response (``Connection: close``), which
every HTTP/1.1 client handles by reconnecting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client  # type: ignore[import-untyped]

from llmops import poll
from llmops.errors import LlmopsError

MAX_HEAD_BYTES = 64 * 1024
DEFAULT_HOLD_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 5.0
POD_POLL_INTERVAL_S = 0.25


@dataclass
class _Stats:
    pending: int = 0
    in_flight: int = 0
    total: int = 0
    failed: int = 0
    per_backend: dict[tuple[str, int], int] = field(default_factory=dict)


class Gateway:
    """One model's front door on ``127.0.0.1:port``; runs its own event loop in a daemon thread."""

    def __init__(self, model: str, port: int, *, hold_timeout: float = DEFAULT_HOLD_TIMEOUT_S) -> None:
        self.model = model
        self.port = port
        self.hold_timeout = hold_timeout
        self._backends: list[tuple[str, int]] = []
        self._stats = _Stats()
        self._rr = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._changed: asyncio.Condition | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        # asyncio keeps only weak references to tasks: hold the connection handlers
        # so a pending one is never garbage-collected mid-request.
        self._tasks: set[asyncio.Task[None]] = set()

    # -- public API (any thread) ---------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._run, name=f"gateway-{self.model}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise LlmopsError(f"gateway for {self.model} could not listen on 127.0.0.1:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)
        self._loop = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_backends(self, backends: Sequence[tuple[str, int]]) -> None:
        """Replace the replica list (e.g. from :class:`ReadyPods`); wakes held requests."""
        loop = self._loop
        if loop is None:
            raise LlmopsError("gateway is not running; call start() first")
        fut = asyncio.run_coroutine_threadsafe(self._set_backends(list(backends)), loop)
        fut.result(5)

    @property
    def backends(self) -> list[tuple[str, int]]:
        return list(self._backends)

    def in_flight_on(self, backend: tuple[str, int]) -> int:
        """Requests currently relayed to BACKEND (a replica being removed drains these first)."""
        return int(self._stats.per_backend.get(backend, 0))

    def snapshot(self) -> dict[str, int]:
        s = self._stats
        return {"pending": s.pending, "in_flight": s.in_flight, "total": s.total, "failed": s.failed,
                "backends": len(self._backends)}  # fmt: skip

    # -- event loop side ----------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._changed = asyncio.Condition()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024, reuse_address=True)
            )
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = int(self._server.sockets[0].getsockname()[1])  # the real one when asked for port 0
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _set_backends(self, backends: list[tuple[str, int]]) -> None:
        assert self._changed is not None
        async with self._changed:
            self._backends = backends
            counts = self._stats.per_backend
            self._stats.per_backend = {b: n for b, n in counts.items() if n > 0 or b in backends}
            for b in backends:
                self._stats.per_backend.setdefault(b, 0)
            self._changed.notify_all()

    async def _pick(self, reader: asyncio.StreamReader) -> tuple[str, int] | None:
        """Least in-flight backend; waits (counted as pending) while there is none.

        None when no replica appears within ``hold_timeout`` or the client hangs
        up while held (a held request the client abandoned must not keep the
        activation metric up).
        """
        assert self._changed is not None
        if not self._backends:
            self._stats.pending += 1
            hangup = asyncio.ensure_future(reader.read(1))  # the client sends nothing more unless it closes
            ready = asyncio.ensure_future(self._wait_for_backend())
            try:
                done, _ = await asyncio.wait({hangup, ready}, timeout=self.hold_timeout,
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if ready not in done:
                    return None
            finally:
                for fut in (hangup, ready):
                    fut.cancel()
                self._stats.pending -= 1
        backends = self._backends
        if not backends:
            return None
        start = next(self._rr) % len(backends)
        ordered = backends[start:] + backends[:start]
        return min(ordered, key=lambda b: self._stats.per_backend.get(b, 0))

    async def _wait_for_backend(self) -> None:
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._backends))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            request_line, headers = _parse_head(head)
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
            if path == "/gateway/metrics":
                await self._reply(writer, 200, self._metrics(), "text/plain; version=0.0.4")
                return
            await self._proxy(request_line, head, body, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _proxy(self, request_line: str, head: bytes, body: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self._stats.total += 1
        self._stats.in_flight += 1
        backend: tuple[str, int] | None = None
        try:
            backend = await self._pick(reader)
            if backend is None:
                self._stats.failed += 1
                if not reader.at_eof():
                    await self._reply(writer, 503, f"no replica of {self.model} became ready within {self.hold_timeout:.0f}s\n")
                return
            self._stats.per_backend[backend] = self._stats.per_backend.get(backend, 0) + 1
            try:
                up_reader, up_writer = await asyncio.open_connection(*backend)
            except OSError:
                self._stats.failed += 1
                await self._reply(writer, 502, f"replica {backend[0]}:{backend[1]} refused the connection\n")
                return
            try:
                up_writer.write(_rewrite_head(head, backend) + body)
                await up_writer.drain()
                while chunk := await up_reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
            finally:
                up_writer.close()
        finally:
            self._stats.in_flight -= 1
            if backend is not None and backend in self._stats.per_backend:
                self._stats.per_backend[backend] -= 1

    async def _reply(self, writer: asyncio.StreamWriter, status: int, text: str, ctype: str = "text/plain") -> None:
        reason = {200: "OK", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "")
        data = text.encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode() + data
        )
        await writer.drain()

    def _metrics(self) -> str:
        s = self._stats
        lbl = f'{{model="{self.model}"}}'
        return (
            "# HELP llmops_gateway_requests_pending Requests held because the model has no ready replica.\n"
            "# TYPE llmops_gateway_requests_pending gauge\n"
            f"llmops_gateway_requests_pending{lbl} {s.pending}\n"
            "# HELP llmops_gateway_requests_in_flight Requests accepted and not yet answered.\n"
            "# TYPE llmops_gateway_requests_in_flight gauge\n"
            f"llmops_gateway_requests_in_flight{lbl} {s.in_flight}\n"
            "# HELP llmops_gateway_requests_total Requests accepted.\n"
            "# TYPE llmops_gateway_requests_total counter\n"
            f"llmops_gateway_requests_total{lbl} {s.total}\n"
            "# HELP llmops_gateway_backends Ready replicas the gateway routes to.\n"
            "# TYPE llmops_gateway_backends gauge\n"
            f"llmops_gateway_backends{lbl} {len(self._backends)}\n"
        )


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not supported by the test gateway")
    return lines[0], headers


def _rewrite_head(head: bytes, backend: tuple[str, int]) -> bytes:
    """Same request, but for the backend host and one request per connection."""
    lines = head.decode("latin-1").split("\r\n")
    kept = [ln for ln in lines[1:] if ln and ln.split(":", 1)[0].strip().lower() not in {"connection", "host", "keep-alive"}]
    out = [lines[0], f"Host: {backend[0]}:{backend[1]}", *kept, "Connection: close", "", ""]
    return "\r\n".join(out).encode("latin-1")


def ready_pod_addresses(pods: Sequence[Mapping[str, Any]], port_name: str = "http") -> list[tuple[str, int]]:
    """(pod IP, container port named PORT_NAME) of each Ready pod that is not being deleted, sorted."""
    out = []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp") or not status.get("podIP"):
            continue
        if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            continue
        ports = [p for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("name") == port_name]
        if ports:
            out.append((str(status["podIP"]), int(ports[0]["containerPort"])))
    return sorted(out)


@dataclass
class ReadyPods:
    """Keeps a gateway's backends equal to the Ready pods that SELECTOR matches, polled from the API server.

    What a Service's endpoints controller does for kube-proxy, for one
    gateway: a pod joins when it turns Ready and leaves when it stops being
    Ready or is deleted (its in-flight requests finish on it).
    """

    api: client.ApiClient
    namespace: str
    selector: Mapping[str, str]
    gateway: Gateway
    port_name: str = "http"
    interval: float = POD_POLL_INTERVAL_S
    errors: list[str] = field(default_factory=list)
    _runner: poll.Repeat | None = None

    def start(self) -> ReadyPods:
        self.poll_once()
        self._runner = poll.Repeat(self.poll_once, self.interval, f"ready-pods-{self.gateway.model}", self.errors).start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()

    def poll_once(self) -> list[tuple[str, int]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))
        resp = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace, label_selector=selector,
                                                               _preload_content=False)  # fmt: skip
        backends = ready_pod_addresses(json.loads(resp.data)["items"], self.port_name)
        if backends != self.gateway.backends:
            self.gateway.set_backends(backends)
        return backends

