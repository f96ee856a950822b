"""A steady streaming load that records every request: what an upgrade must not break.

``SteadyLoad`` keeps CONCURRENCY streamed chat completions in flight against
an OpenAI base URL (the router's Service on the real node) until it is
stopped, and records for every request its outcome and the times its tokens
arrived. The upgrade path (tests/cluster/test_upgrade_path.py) runs it while
``helm upgrade`` and ``helm rollback`` roll the engines and the router, and
asserts zero failed requests; scripts/bench_upgrade.py reports the same
figures.

A request counts as failed when the status is not 200, the stream breaks
(a connection error or a timeout after the status came), carries an error
event, ends without ``data: [DONE]`` or carries no token, or when it could
not be sent at all even after the one retry below.

Clients here behave as the common OpenAI clients do: one keep-alive
connection pool, and a request that fails *before any response* on a
connection error is sent once more on a new connection (the OpenAI SDKs
retry connection errors twice by default; Go's net/http resends a request
a closed keep-alive connection never carried). That case is inherent to
HTTP/1.1 keep-alive: a router pod that drains finishes every response in
flight and then closes its connections, and a client that had already
written its next request on one learns it only then; no server-side
setting can move a kept-alive connection to another pod. Such retries are
counted (``connection_retries``) and reported; nothing after the status
line is ever retried, so a stream cut by a pod that stopped too early
fails.

The HTTP client is aiohttp (in the harness virtualenv as a dependency of
``kubernetes``); the SSE parsing is llmops.loadtest.sse's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from llmops.loadtest.sse import SSEParser, StreamAccumulator

DEFAULT_PROMPT = "Summarise what a rolling update does to the requests in flight."


@dataclass
class Outcome:
    """One streamed request: when it ran, how it ended, when its tokens came."""

    started: float
    ended: float = 0.0
    status: int | None = None
    error: str | None = None
    token_times: list[float] = field(default_factory=list)
    # Connection errors before any response, each followed by a resend on a new connection.
    retried: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.started if self.token_times else None

    @property
    def longest_itl(self) -> float:
        t = self.token_times
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)

    @property
    def longest_wait(self) -> float:
        """The longest the client waited for this stream's next token, the wait for the first included."""
        return max(self.ttft or 0.0, self.longest_itl)


@dataclass
class Summary:
    """What a run of the load saw; ``failures`` lists the first failed requests."""

    requests: int
    failed: int
    tokens: int
    seconds: float
    longest_gap_s: float
    longest_itl_s: float
    longest_ttft_s: float
    failures: list[str]
    connection_retries: int = 0
    retried: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "failed_requests": self.failed, "tokens": self.tokens,
            "seconds": round(self.seconds, 2), "longest_token_gap_s": round(self.longest_gap_s, 3),
            "longest_itl_s": round(self.longest_itl_s, 3), "longest_ttft_s": round(self.longest_ttft_s, 3),
            "failures": self.failures, "connection_retries": self.connection_retries, "retried": self.retried,
        }  # fmt: skip

    def line(self) -> str:
        return (f"{self.requests} streamed requests in {self.seconds:.1f} s, {self.failed} failed "
                f"({self.connection_retries} resent after a connection error before any response), "
                f"{self.tokens} tokens; longest token gap {self.longest_gap_s * 1000:.0f} ms "
                f"(inter-token {self.longest_itl_s * 1000:.0f} ms, first token {self.longest_ttft_s * 1000:.0f} ms)")


class SteadyLoad:
    """CONCURRENCY closed-loop streams of chat completions to BASE_URL until ``stop()``.

    Runs its own asyncio loop in a thread, so a test can drive Helm in the
    foreground. ``stop()`` lets every request in flight finish (it is part
    of the measurement) and returns the summary.
    """

    def __init__(self, base_url: str, model: str, *, concurrency: int = 4, max_tokens: int = 48,
                 request_timeout_s: float = 60.0, prompt: str = DEFAULT_PROMPT, connection_retries: int = 1,
                 ignore_eos: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.request_timeout_s = request_timeout_s
        self.prompt = prompt
        self.connection_retries = connection_retries
        # Every answer exactly max_tokens long (vLLM's and the simulator's `ignore_eos`): streams of a known
        # length, so "longer than a pod lives after its deletion" is a property of the load, not luck.
        self.ignore_eos = ignore_eos
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._stopped = 0.0
        self._crash: BaseException | None = None

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SteadyLoad:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Summary:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(self.request_timeout_s + 30)
            if self._thread.is_alive():
                raise RuntimeError(f"the steady load did not stop within {self.request_timeout_s + 30:.0f} s")
            self._thread = None
            self._stopped = time.monotonic()
        if self._crash is not None:
            raise RuntimeError(f"the steady load's client crashed: {self._crash!r}") from self._crash
        return self.summary()

    def summary(self) -> Summary:
        done = list(self.outcomes)
        failed = [o for o in done if not o.ok]
        return Summary(
            requests=len(done), failed=len(failed), tokens=sum(len(o.token_times) for o in done),
            seconds=(self._stopped or time.monotonic()) - self._started,
            longest_gap_s=max((o.longest_wait for o in done if o.ok), default=0.0),
            longest_itl_s=max((o.longest_itl for o in done if o.ok), default=0.0),
            longest_ttft_s=max((o.ttft or 0.0 for o in done if o.ok), default=0.0),
            failures=[f"+{o.started - self._started:.2f}s: {o.error}" for o in failed[:10]],
            connection_retries=sum(len(o.retried) for o in done),
            retried=[f"+{o.started - self._started:.2f}s: {r}" for o in done for r in o.retried][:10],
        )  # fmt: skip

    def once(self) -> Outcome:
        """One request, outside the load (a readiness probe that uses the same client and checks)."""

        async def one() -> Outcome:
            async with aiohttp.ClientSession(timeout=self._timeout()) as session:
                return await self._one(session)

        return asyncio.run(one())

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._crash = exc

    async def _main(self) -> None:
        async with aiohttp.ClientSession(timeout=self._timeout()) as session:
            await asyncio.gather(*(self._client(session) for _ in range(self.concurrency)))

    async def _client(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            out = await self._one(session)
            self.outcomes.append(out)
            if not out.ok:
                # A failing endpoint is not hammered in a tight loop; the next try still counts.
                await asyncio.sleep(0.1)

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.request_timeout_s, sock_connect=5)

    async def _one(self, session: aiohttp.ClientSession) -> Outcome:
        out = Outcome(started=time.monotonic())
        try:
            for attempt in range(self.connection_retries + 1):
                if attempt == 0:
                    sent = await self._attempt(session, out)
                else:
                    # A new connection, never one from the pool the failed attempt came from.
                    async with aiohttp.ClientSession(timeout=self._timeout()) as fresh:
                        sent = await self._attempt(fresh, out)
                if sent or attempt == self.connection_retries:
                    break
                out.retried.append(out.error or "")
                out.error = None
        finally:
            out.ended = time.monotonic()
        return out

    async def _attempt(self, session: aiohttp.ClientSession, out: Outcome) -> bool:
        """One try; False when it failed on a connection error before any response (it may be resent)."""
        body = {"model": self.model, "messages": [{"role": "user", "content": self.prompt}],
                "max_tokens": self.max_tokens, "stream": True, "stream_options": {"include_usage": True},
                **({"ignore_eos": True} if self.ignore_eos else {})}
        acc = StreamAccumulator()
        parser = SSEParser()
        try:
            async with session.post(f"{self.base_url}/v1/chat/completions", json=body) as resp:
                out.status = resp.status
                if resp.status != 200:
                    out.error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                    return True
                async for chunk in resp.content.iter_any():
                    now = time.monotonic()
                    for event in parser.feed(chunk):
                        acc.add(event, now)
            if acc.error:
                out.error = f"error event in the stream: {acc.error[:200]}"
            elif not parser.done:
                out.error = f"stream ended without [DONE] after {len(acc.token_times)} tokens"
            elif not acc.token_times:
                out.error = "stream carried no token"
            return True
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            where = "before any response" if out.status is None else f"after HTTP {out.status} and {len(acc.token_times)} tokens"
            out.error = f"{type(exc).__name__} {where}: {exc}"[:300]
            return not (out.status is None and isinstance(exc, aiohttp.ClientConnectionError))
        finally:
            out.token_times = acc.token_times
