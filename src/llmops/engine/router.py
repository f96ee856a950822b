"""The vLLM Router (pinned ``vllm-router``) as a host process.

charts/router runs this same release in the cluster; on the host the harness
starts it in front of llm-d-inference-sim processes (tests/e2e/router,
scripts/bench_router.py). Multi-model routing needs the router's IGW mode
(``--enable-igw``): workers then live in a registry keyed by model id, and a
request reaches only the workers registered for the model it names.

What the router's source (vllm-project/router 0.1.17) says about IGW mode,
and what the chart relies on:

- Workers join through ``POST /workers {"url", "model_id"}`` or the router's
  Kubernetes pod discovery. Discovery gives no model id: the router asks the
  new worker's ``GET /v1/models`` and takes the first entry, so one engine pod
  counts as exactly one model (its served name); its LoRA adapters are not
  registered.
- ``GET /v1/models`` answers ``{"models": ["a", "b"]}`` (not the OpenAI list),
  and 503 while no worker is registered.
- A model no worker is registered for is forwarded to an arbitrary worker
  (the model filter is dropped), whose engine answers the OpenAI 404; a
  model with zero replicas is therefore never held, and an unregistered LoRA
  adapter only works when it happens to land on its base model's worker.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops import procs, tools
from llmops.errors import LlmopsError

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLICIES = ("round_robin", "power_of_two", "cache_aware", "consistent_hash", "kv_aware", "random", "sticky_least_loaded")


@dataclass
class HostRouter:
    """One ``vllm-router`` process on 127.0.0.1 in IGW mode."""

    port: int
    metrics_port: int
    policy: str = "cache_aware"
    extra_args: Sequence[str] = ()
    log: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def argv(self) -> list[str]:
        if self.policy not in POLICIES:
            raise LlmopsError(f"unknown router policy {self.policy!r}; allowed: {', '.join(POLICIES)}")
        return [
            str(tools.require("vllm-router")),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(self.metrics_port),
            "--enable-igw", "--policy", self.policy,
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> HostRouter:
        busy = [p for p in (self.port, self.metrics_port) if _listening(p)]
        if busy:
            raise LlmopsError(f"vllm-router: port(s) {busy} on 127.0.0.1 already in use (another router?)")
        out = self.log.open("wb") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                status, _ = request(f"{self.url}/liveness", timeout=1)
                if status == 200 and self._proc.poll() is None:
                    return self
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:] if self.log and self.log.exists() else ""
                self.stop()
                raise LlmopsError(f"vllm-router on :{self.port} not live within {READY_TIMEOUT_S}s\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        procs.stop_process(self._proc, STOP_TIMEOUT_S)

    def add_worker(self, url: str, model_id: str | None = None) -> dict[str, Any]:
        """Register URL; without MODEL_ID the router asks the worker's /v1/models, as discovery does."""
        payload: dict[str, Any] = {"url": url}
        if model_id is not None:
            payload["model_id"] = model_id
        status, body = request(f"{self.url}/workers", payload)
        if status != 200:
            raise LlmopsError(f"router refused worker {url}: HTTP {status} {body!r}")
        return body if isinstance(body, dict) else {}

    def remove_worker(self, url: str) -> None:
        status, body = request(f"{self.url}/workers/{urllib.request.quote(url, safe='')}", method="DELETE")
        if status != 200:
            raise LlmopsError(f"router could not remove worker {url}: HTTP {status} {body!r}")

    def workers(self) -> list[dict[str, Any]]:
        status, body = request(f"{self.url}/workers")
        if status != 200 or not isinstance(body, dict):
            raise LlmopsError(f"GET /workers: HTTP {status} {body!r}")
        return list(body.get("workers", []))

    def models(self) -> list[str]:
        """Model ids the router serves, from IGW's ``{"models": [...]}`` answer."""
        status, body = request(f"{self.url}/v1/models")
        if status == 503:
            return []
        if status != 200 or not isinstance(body, dict):
            raise LlmopsError(f"GET /v1/models: HTTP {status} {body!r}")
        return sorted(str(m) for m in body.get("models", []))


def start_simulator(port: int, model: str, log: Path, *extra: str, ttft: str = "10ms", itl: str = "2ms") -> subprocess.Popen[bytes]:
    """One llm-d-inference-sim on 127.0.0.1:PORT serving MODEL, once /health answers (the host stand-in for an engine pod)."""
    argv = [
        str(tools.require("llm-d-inference-sim")), "--model", model, "--port", str(port), "--mode", "random",
        "--force-dummy-tokenizer", "--time-to-first-token", ttft, "--inter-token-latency", itl, *extra,
    ]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if request(f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.stop_process(proc, 5)
            raise LlmopsError(f"simulator {model} on :{port} not healthy within {READY_TIMEOUT_S}s:\n{log.read_text()[-1500:]}")
        time.sleep(0.2)


def _listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:PORT (a bind test trips over TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def request(
    url: str, payload: Any = None, *, method: str | None = None, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, parsed JSON body or raw text) for one HTTP request; HTTP errors are returned, not raised."""
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
