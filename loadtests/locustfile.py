"""Locust user for OpenAI-compatible LLM endpoints (vLLM, llm-d-inference-sim, ...).

Run by ``llmops loadtest`` (a headless Locust subprocess) or by the
``charts/loadtest`` chart in the cluster. Configuration comes from the JSON
file named by ``LLMOPS_LOADTEST_CONFIG``::

    {"profile": {...profile mapping...},
     "targets": {"<model>": ["http://127.0.0.1:18000", ...]},   # or "discover": true
     "shape": {...llmops.loadtest.shapes.Shape.to_dict()...},
     "samples": "/path/samples.jsonl",     # raw per-request samples (exact percentiles)
     "api_key": "", "seed": 1, "progress_interval": 5}

Per request it measures TTFT, every inter-token gap (ITL), TPOT, end-to-end
latency and the usage block's token counts, keeps the raw sample, and fires
Locust request events named ``TTFT``, ``TPOT``, ``ITL`` (per-request mean gap)
beside the request itself (``POST <path>``, response_time = end-to-end,
response_length = output tokens) so Locust's own UI/HTML shows them too.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

try:  # in the repository and in the chart's ConfigMap layout alike
    from llmops.loadtest import profiles, shapes, stats
    from llmops.loadtest.sse import SSEParser, StreamAccumulator
except ImportError:  # pragma: no cover - running from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from llmops.loadtest import profiles, shapes, stats
    from llmops.loadtest.sse import SSEParser, StreamAccumulator


def _load_config() -> dict[str, Any]:
    path = os.environ.get("LLMOPS_LOADTEST_CONFIG")
    if not path:
        raise SystemExit("LLMOPS_LOADTEST_CONFIG is not set: run through `llmops loadtest` or the loadtest chart")
    return dict(json.loads(Path(path).read_text()))


CONFIG = _load_config()
PROFILE = profiles.parse(CONFIG["profile"], "profile")
SHAPE = shapes.Shape.from_dict(CONFIG["shape"]) if "shape" in CONFIG else shapes.build(CONFIG.get("load") or PROFILE.load)
# Distributed (the loadtest chart): every worker runs this file, so each offers 1/N of an open-loop rate.
_DIVISOR = float(os.environ.get("LLMOPS_RATE_DIVISOR") or CONFIG.get("rate_divisor") or 1)
if SHAPE.open_loop and _DIVISOR > 1:
    SHAPE = shapes.Shape(
        SHAPE.kind, True, tuple(shapes.Stage(s.until, s.value / _DIVISOR) for s in SHAPE.stages),
        poisson=SHAPE.poisson, max_concurrency=SHAPE.max_concurrency, sweep=SHAPE.sweep,
    )  # fmt: skip


def _discover_targets() -> dict[str, list[str]]:
    """In the cluster: ask the Service's /v1/models which model names it serves."""
    import urllib.request

    base = CONFIG["url"].rstrip("/")
    req = urllib.request.Request(f"{base}/v1/models", headers=_headers())
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - configured endpoint
        data = json.load(resp)
    # OpenAI's list ({"data": [{"id": ...}]}) from an engine; the vLLM Router in
    # IGW mode (charts/router) answers {"models": ["name", ...]} instead.
    names = [m["id"] for m in data.get("data", [])] or [
        m if isinstance(m, str) else m.get("id") or m.get("model_id") for m in data.get("models", [])
    ]
    if not names:
        raise SystemExit(f"{base}/v1/models lists no model: {json.dumps(data)[:200]}")
    return {str(name): [base] for name in names}


def _headers() -> dict[str, str]:
    key = CONFIG.get("api_key") or os.environ.get("OPENAI_API_KEY", "")
    key_file = os.environ.get("OPENAI_API_KEY_FILE")  # the chart mounts the Secret as a file
    if not key and key_file and Path(key_file).is_file():
        key = Path(key_file).read_text().strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


TARGETS: dict[str, list[str]] = CONFIG.get("targets") or _discover_targets()
_ROUND_ROBIN = {model: itertools.cycle(urls) for model, urls in TARGETS.items()}
_SAMPLES: list[dict[str, Any]] = []
_SAMPLES_PATH = Path(CONFIG["samples"]) if CONFIG.get("samples") else None
_ARRIVALS = SHAPE.arrivals(CONFIG.get("seed")) if SHAPE.open_loop else None
_STATE: dict[str, Any] = {"t0": None, "done": 0, "failed": 0, "inflight": 0, "seq": itertools.count(), "recent_ttft": []}
# After the shape's duration no new request starts; the run ends once in-flight ones finish (or this many seconds pass).
DRAIN_TIMEOUT_S = float(CONFIG.get("drain_timeout", 30))
# Distributed (the loadtest chart): workers send their raw samples to the
# master, which prints one summary line (exact percentiles over every sample)
# when it quits; `llmops loadtest --in-cluster` reads it from the master's log.
SAMPLES_MESSAGE = "llmops_samples"
SUMMARY_MARKER = "LLMOPS_SUMMARY "
_RECEIVED: list[dict[str, Any]] = []


def _sending_window_closed() -> bool:
    return _STATE["t0"] is not None and time.time() - _STATE["t0"] >= SHAPE.duration


def _idle_until_stopped() -> None:
    gevent.sleep(SHAPE.duration + DRAIN_TIMEOUT_S + 60)  # the shape stops the run long before
    raise StopUser()


def _flush(environment: Any = None) -> None:
    runner = getattr(environment, "runner", None)
    if isinstance(runner, WorkerRunner) and _SAMPLES:
        batch = _SAMPLES[:]
        del _SAMPLES[:]
        runner.send_message(SAMPLES_MESSAGE, batch)
        return
    if _SAMPLES_PATH is None or not _SAMPLES:
        return
    batch = _SAMPLES[:]
    del _SAMPLES[:]
    with _SAMPLES_PATH.open("a") as fh:
        fh.writelines(json.dumps(s, separators=(",", ":")) + "\n" for s in batch)


def _progress_loop(environment: Any) -> None:
    interval = float(CONFIG.get("progress_interval", 5))
    started = time.time()
    last_done = 0
    while True:
        gevent.sleep(interval)
        _flush(environment)
        if isinstance(environment.runner, MasterRunner):
            _STATE["done"] = sum(1 for s in _RECEIVED if s.get("ok"))
            _STATE["failed"] = len(_RECEIVED) - _STATE["done"]
        done = _STATE["done"]
        recent = sorted(_STATE["recent_ttft"])
        _STATE["recent_ttft"] = []
        ttft = f" ttft_p50={recent[len(recent) // 2]:.0f}ms" if recent else ""
        users = environment.runner.user_count if environment.runner else 0
        print(
            f"[{time.time() - started:5.0f}s] clients={users} completed={done} failed={_STATE['failed']} "
            f"rps={(done - last_done) / interval:.1f}{ttft}",
            flush=True,
        )
        last_done = done


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    _STATE["t0"] = time.time()  # the arrival schedule and the sending window start with the run
    if _SAMPLES_PATH is not None:
        _SAMPLES_PATH.parent.mkdir(parents=True, exist_ok=True)
        _SAMPLES_PATH.write_text("")
    if CONFIG.get("progress_interval", 5):
        gevent.spawn(_progress_loop, environment)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(SAMPLES_MESSAGE, lambda msg, **_kw: _RECEIVED.extend(msg.data))


@events.test_stop.add_listener
def _on_stop(environment: Any = None, **_: Any) -> None:
    _flush(environment)


@events.quitting.add_listener
def _on_quit(environment: Any = None, **_: Any) -> None:
    _flush(environment)
    if isinstance(getattr(environment, "runner", None), MasterRunner):
        summary = stats.summarize([stats.Sample.from_dict(s) for s in _RECEIVED])
        print(SUMMARY_MARKER + json.dumps({"summary": summary, "samples": len(_RECEIVED)}), flush=True)


class OpenAIUser(FastHttpUser):
    """One simulated client: closed loop (waits for its answer) or an open-loop arrival slot."""

    host = next(iter(next(iter(TARGETS.values()))), "http://127.0.0.1") if TARGETS else "http://127.0.0.1"
    wait_time = constant(0)
    network_timeout = float(CONFIG.get("request_timeout", 600))
    connection_timeout = 10.0
    concurrency = 1  # one connection per client: the client count is the request concurrency
    insecure = bool(CONFIG.get("insecure", False))

    def on_start(self) -> None:
        seed = CONFIG.get("seed")
        user_seed = None if seed is None else seed * 100_003 + next(_STATE["seq"])
        self.factory = profiles.RequestFactory(PROFILE, list(TARGETS), seed=user_seed)
        self.headers = {**_headers(), "Content-Type": "application/json"}

    def _wait_for_arrival(self) -> float:
        """Open loop: sleep until the next scheduled arrival; returns how late it starts (ms)."""
        if _STATE["t0"] is None:
            _STATE["t0"] = time.time()
        try:
            offset = next(_ARRIVALS)  # type: ignore[arg-type]
        except StopIteration:
            _idle_until_stopped()
        delay = _STATE["t0"] + offset - time.time()
        if delay > 0:
            gevent.sleep(delay)
            return 0.0
        return -delay * 1000

    @task
    def generate(self) -> None:
        if _sending_window_closed():
            _idle_until_stopped()  # the duration is over: no new request, in-flight ones drain
        lag_ms = self._wait_for_arrival() if _ARRIVALS is not None else 0.0
        _STATE["inflight"] += 1
        try:
            self._send(lag_ms)
        finally:
            _STATE["inflight"] -= 1

    def _send(self, lag_ms: float) -> None:
        conv, path, body = self.factory.next()
        base = next(_ROUND_ROBIN[conv.model])
        sample: dict[str, Any] = {
            "model": conv.model,
            "api": conv.api,
            "stream": conv.stream,
            "status": 0,
            "ok": False,
            "ttft_ms": None,
            "itl_ms": [],
            "input_tokens": 0,
            "output_tokens": 0,
            "error": "",
            "lag_ms": lag_ms,
        }
        answer = ""
        sample["start"] = time.time()
        t_start = time.perf_counter()
        with self.client.request(
            "POST",
            base + path,
            name=f"{path} [{conv.model}]",
            data=json.dumps(body),
            headers=self.headers,
            stream=conv.stream,
            catch_response=True,
        ) as resp:
            sample["status"] = int(resp.status_code or 0)
            try:
                if sample["status"] != 200:
                    raise RuntimeError(f"HTTP {sample['status']}: {(resp.text or '')[:200]}")
                if conv.stream:
                    answer = self._consume_stream(resp, t_start, sample)
                else:
                    data = resp.json()
                    usage = data.get("usage") or {}
                    sample["input_tokens"] = int(usage.get("prompt_tokens", 0))
                    sample["output_tokens"] = int(usage.get("completion_tokens", 0))
                    choice = (data.get("choices") or [{}])[0]
                    answer = (choice.get("message") or {}).get("content") or choice.get("text") or ""
                e2el = (time.perf_counter() - t_start) * 1000
                sample["e2el_ms"] = e2el
                sample["ok"] = True
                resp.request_meta["response_time"] = e2el
                resp.request_meta["response_length"] = sample["output_tokens"]
                resp.success()
            except Exception as exc:  # noqa: BLE001 - any failure is a failed sample
                sample["e2el_ms"] = (time.perf_counter() - t_start) * 1000
                sample["error"] = f"{type(exc).__name__}: {exc}"[:300]
                resp.failure(sample["error"])
        _SAMPLES.append(sample)
        if sample["ok"]:
            _STATE["done"] += 1
            if sample["ttft_ms"] is not None:
                _STATE["recent_ttft"].append(sample["ttft_ms"])
            self._fire_token_events(conv.model, sample)
            self.factory.record_answer(conv, answer)
        else:
            _STATE["failed"] += 1
            self.factory.conversation = None  # a broken conversation starts afresh

    def _consume_stream(self, resp: Any, t_start: float, sample: dict[str, Any]) -> str:
        raw = resp._response  # geventhttpclient response; readline returns each SSE line as it arrives
        parser = SSEParser()
        acc = StreamAccumulator()
        while True:
            line = raw.readline(b"\n")
            if not line:
                break
            now = time.perf_counter()
            for event in parser.feed(line):
                acc.add(event, now)
            if acc.error:
                raise RuntimeError(f"stream error: {acc.error}")
            if parser.done:
                break
        if not acc.token_times:
            raise RuntimeError("stream ended without any generated token")
        sample["ttft_ms"] = (acc.token_times[0] - t_start) * 1000
        sample["itl_ms"] = [(b - a) * 1000 for a, b in itertools.pairwise(acc.token_times)]
        usage = acc.usage or {}
        if not usage:
            raise RuntimeError("stream ended without a usage block (stream_options.include_usage ignored?)")
        sample["input_tokens"] = int(usage.get("prompt_tokens", 0))
        sample["output_tokens"] = int(usage.get("completion_tokens", 0))
        return acc.text

    def _fire_token_events(self, model: str, sample: dict[str, Any]) -> None:
        fire = self.environment.events.request.fire
        common = {"name": model, "response_length": 0, "exception": None, "context": {}}
        if sample["ttft_ms"] is not None:
            fire(request_type="TTFT", response_time=sample["ttft_ms"], **common)
            if sample["output_tokens"] > 1:
                tpot = (sample["e2el_ms"] - sample["ttft_ms"]) / (sample["output_tokens"] - 1)
                fire(request_type="TPOT", response_time=tpot, **common)
        if sample["itl_ms"]:
            fire(request_type="ITL", response_time=sum(sample["itl_ms"]) / len(sample["itl_ms"]), **common)


class ConfiguredShape(LoadTestShape):
    """Drives Locust from the configured shape: client count over time, or the open-loop client pool."""

    last: tuple[int, float] = (0, 1.0)

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        value = SHAPE.value_at(t)
        if value is None:
            # Drain: keep the clients (they start nothing new) until in-flight requests finish.
            # In a distributed run the master sees no in-flight requests and stops at the duration.
            if _STATE["inflight"] > 0 and t < SHAPE.duration + DRAIN_TIMEOUT_S:
                return self.last
            return None
        if SHAPE.open_loop:
            self.last = (SHAPE.max_concurrency, float(SHAPE.max_concurrency))
        else:
            users = max(int(round(value)), 0)
            self.last = (users, float(max(users, 1) * 10))
        return self.last
