#!/usr/bin/env python3
"""Benchmark: the pinned vLLM Router's policies, its overhead and its memory.

Usage: PYTHONPATH=src .venv/bin/python scripts/bench_router.py [--duration 40] [--concurrency 8]
       [--overhead-requests 2000] [--memory-requests 20000] [--policies round_robin,power_of_two,cache_aware,kv_aware]

Three parts, printed as a table:

1. Policies: 4 llm-d-inference-sim replicas with KV-cache simulation on
   (`--enable-kvcache`, `--time-to-first-token 0`, a prefill cost per prompt
   token, so a prefix hit really shortens TTFT), behind the router in IGW mode
   (workers registered with their model id, as discovery does). A
   shared-prefix multi-turn chat load: SESSIONS conversations (their prompts
   together exceed one replica's simulated KV cache of 1024 x 16 tokens, so
   where a session lands matters), each with its
   own long system prompt; every request resends the conversation so far
   plus a new user turn (streamed, usage included). Closed loop at a fixed
   concurrency for DURATION seconds per policy, fresh simulators per policy.
   Reported: TTFT p50/p95, ITL p50, requests/s, prefix-hit ratio (cached
   prompt tokens / prompt tokens, from the simulators' usage blocks).
   kv_aware gets each simulator's ZMQ KV-event stream (`--kv-event-source`).
2. Overhead: one simulator with zero latency, one non-streamed 1-token
   request at a time, straight to the simulator and through the router;
   p50/p99 of each and the difference.
3. Memory: the router's resident memory (VmRSS) after MEMORY_REQUESTS
   cache_aware requests whose prompts are all distinct (the prefix tree's
   worst case), next to the prefix-tree size it reports.

Ports 18310-18319 (the bench part of the router range 18300-18319); every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmops import procs, tools
from llmops.engine.router import HostRouter, request

# The router's host range is 18300-18319; the bench takes 18310-18319.
ROUTER_PORTS = (18310,)
METRICS_PORTS = (18319,)
_RUN = [0]
SIM_PORTS = (18311, 18312, 18313, 18314)
ZMQ_PORTS = (18315, 18316, 18317, 18318)
MODEL = "bench"
WORDS = [f"w{i}" for i in range(5000)]


def start_sims(
    log_dir: Path, *, kv: bool, ports: tuple[int, ...] = SIM_PORTS, prefill_ms_per_token: float = 0.5, kv_blocks: int = 1024
) -> list[subprocess.Popen[bytes]]:
    sims = []
    for i, port in enumerate(ports):
        argv = [str(tools.require("llm-d-inference-sim")), "--model", MODEL, "--port", str(port), "--mode", "random",
                "--force-dummy-tokenizer", "--max-num-seqs", "16"]  # fmt: skip
        if kv:
            argv += ["--enable-kvcache", "--kv-cache-size", str(kv_blocks), "--block-size", "16",
                     "--time-to-first-token", "0", "--prefill-overhead", "5ms",
                     "--prefill-time-per-token", f"{prefill_ms_per_token}ms", "--inter-token-latency", "5ms",
                     "--zmq-endpoint", f"tcp://127.0.0.1:{ZMQ_PORTS[i]}"]  # fmt: skip
        else:
            argv += ["--time-to-first-token", "0", "--inter-token-latency", "0"]
        env = {**os.environ, "POD_IP": "127.0.0.1"}  # the simulator's KV cache wants to know its address
        with (log_dir / f"sim-{port}.log").open("wb") as fh:
            sims.append(subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env))
    return wait_started(sims, ports, log_dir)


def wait_started(sims: list[subprocess.Popen[bytes]], ports: tuple[int, ...], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """SIMS once every port answers /health; all stopped and an exit naming LOG_DIR if one does not in 30 s."""
    for port in ports:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                stop_all(sims)
                raise SystemExit(f"simulator :{port} did not start; see {log_dir}")
            time.sleep(0.2)
    return sims


def stop_all(ps: list[subprocess.Popen[bytes]]) -> None:
    for p in ps:
        procs.stop_process(p, 10)


def start_router(log_dir: Path, policy: str, ports: tuple[int, ...], extra: list[str] | None = None) -> HostRouter:
    from llmops.cluster.endpoints import port_is_free

    k = _RUN[0] % len(ROUTER_PORTS)
    _RUN[0] += 1
    deadline = time.monotonic() + 90
    while not (port_is_free(ROUTER_PORTS[k]) and port_is_free(METRICS_PORTS[k])) and time.monotonic() < deadline:
        time.sleep(1)
    router = HostRouter(ROUTER_PORTS[k], METRICS_PORTS[k], policy=policy, extra_args=extra or [], log=log_dir / f"router-{policy}.log")
    router.start()
    for port in ports:
        router.add_worker(f"http://127.0.0.1:{port}", model_id=MODEL)
    return router


@dataclass
class Sample:
    ttft: float
    itls: list[float]
    prompt_tokens: int
    cached_tokens: int


@dataclass
class Load:
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def stream_chat(port: int, messages: list[dict[str, str]], max_tokens: int) -> Sample:
    body = json.dumps({"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": True,
                       "stream_options": {"include_usage": True}})  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    ttft, last, itls, usage = 0.0, 0.0, [], {}
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        now = time.perf_counter()
        if chunk.get("usage"):
            usage = chunk["usage"]
        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
            if not ttft:
                ttft = now - start
            else:
                itls.append(now - last)
            last = now
    conn.close()
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Sample(ttft, itls, int(usage.get("prompt_tokens", 0)), int(cached))


def chat_load(port: int, duration: float, concurrency: int, sessions: int, seed: int) -> tuple[Load, float]:
    rng = random.Random(seed)
    convs = [[{"role": "system", "content": " ".join(rng.choices(WORDS, k=600))}] for _ in range(sessions)]
    locks = [threading.Lock() for _ in range(sessions)]
    load = Load()
    stop = time.monotonic() + duration

    def worker(wid: int) -> None:
        r = random.Random(seed * 100 + wid)
        while time.monotonic() < stop:
            s = r.randrange(sessions)
            with locks[s]:
                conv = convs[s]
                if len(conv) > 13:  # a new conversation keeps the same system prompt
                    del conv[1:]
                conv.append({"role": "user", "content": " ".join(r.choices(WORDS, k=30))})
                messages = list(conv)
            try:
                sample = stream_chat(port, messages, max_tokens=24)
            except Exception:  # noqa: BLE001 - counted, the load goes on
                with load.lock:
                    load.errors += 1
                continue
            with locks[s]:
                conv.append({"role": "assistant", "content": " ".join(r.choices(WORDS, k=24))})
            with load.lock:
                load.samples.append(sample)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return load, time.monotonic() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def rss_mib(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_policies(args: argparse.Namespace, log_dir: Path) -> None:
    print(f"\n## Policies: 4 simulators, KV cache on, {args.sessions} shared-prefix sessions, concurrency {args.concurrency}, {args.duration:.0f} s each")
    print("| policy | requests/s | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | prefix-hit ratio | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for policy in args.policies.split(","):
        sims = start_sims(log_dir, kv=True)
        extra: list[str] = []
        if policy == "kv_aware":
            for port, zmq in zip(SIM_PORTS, ZMQ_PORTS, strict=True):
                extra += ["--kv-event-source", f"http://127.0.0.1:{port}=tcp://127.0.0.1:{zmq}"]
            extra += ["--kv-event-block-size", "16", "--kv-event-model", MODEL]
        try:
            router = start_router(log_dir, policy, SIM_PORTS, extra)
            try:
                load, elapsed = chat_load(router.port, args.duration, args.concurrency, args.sessions, seed=7)
            finally:
                router.stop()
        finally:
            stop_all(sims)
        s = load.samples
        ttft = [x.ttft * 1000 for x in s]
        itl = [g * 1000 for x in s for g in x.itls]
        hit = sum(x.cached_tokens for x in s) / max(1, sum(x.prompt_tokens for x in s))
        print(f"| {policy} | {len(s) / elapsed:.1f} | {pct(ttft, 0.5):.0f} | {pct(ttft, 0.95):.0f} | {pct(itl, 0.5):.1f} | {hit:.2f} | {load.errors} |", flush=True)


def one_shot(port: int) -> float:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - t
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}")
    return elapsed


def bench_overhead(args: argparse.Namespace, log_dir: Path) -> None:
    port = SIM_PORTS[0]
    sims = start_sims(log_dir, kv=False, ports=(port,))
    try:
        router = start_router(log_dir, "round_robin", (port,))
        try:
            for _ in range(50):  # warm both paths
                one_shot(port), one_shot(router.port)
            direct, routed = [], []
            for _ in range(args.overhead_requests):
                direct.append(one_shot(port) * 1000)
                routed.append(one_shot(router.port) * 1000)
        finally:
            router.stop()
    finally:
        stop_all(sims)
    print(f"\n## Overhead: one zero-latency simulator, {args.overhead_requests} sequential 1-token requests each way (new connection per request)")
    print("| path | p50 ms | p99 ms |")
    print("| --- | ---: | ---: |")
    print(f"| direct to the simulator | {pct(direct, 0.5):.2f} | {pct(direct, 0.99):.2f} |")
    print(f"| through the router | {pct(routed, 0.5):.2f} | {pct(routed, 0.99):.2f} |")
    print(f"| added by the router | {pct(routed, 0.5) - pct(direct, 0.5):.2f} | {pct(routed, 0.99) - pct(direct, 0.99):.2f} |", flush=True)


def bench_memory(args: argparse.Namespace, log_dir: Path) -> None:
    ports = SIM_PORTS
    sims = start_sims(log_dir, kv=False, ports=ports)
    try:
        router = start_router(log_dir, "cache_aware", ports, ["--max-tree-size", str(args.max_tree_size), "--eviction-interval-secs", "30"])
        try:
            start_rss = rss_mib(router.pid)
            rng = random.Random(3)
            done = 0
            errors = 0
            lock = threading.Lock()

            def worker(n: int) -> None:
                nonlocal done, errors
                for _ in range(n):
                    prompt = " ".join(rng.choices(WORDS, k=200))  # distinct prompts: the tree only grows
                    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1})
                    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
                    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    conn.close()
                    with lock:
                        done += 1
                        errors += resp.status != 200

            t0 = time.monotonic()
            readings = []
            chunk = 20000
            for _ in range(max(1, args.memory_requests // chunk)):
                threads = [threading.Thread(target=worker, args=(min(chunk, args.memory_requests) // 8,)) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                readings.append(f"{done}: {rss_mib(router.pid):.0f}")
            elapsed = time.monotonic() - t0
            time.sleep(35)  # one eviction pass
            end_rss = rss_mib(router.pid)
        finally:
            router.stop()
    finally:
        stop_all(sims)
    print(f"\n## Memory: cache_aware, {done} requests with distinct 200-word prompts over 4 replicas ({done / elapsed:.0f} req/s, {errors} errors), --max-tree-size {args.max_tree_size}")
    print(f"router RSS (MiB) at start: {start_rss:.0f}; after N requests: {', '.join(readings)}; after one more eviction pass: {end_rss:.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=40.0, help="seconds of load per policy")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent chat streams")
    ap.add_argument("--sessions", type=int, default=32, help="conversations (distinct system prompts)")
    ap.add_argument("--policies", default="round_robin,power_of_two,cache_aware,kv_aware")
    ap.add_argument("--overhead-requests", type=int, default=2000)
    ap.add_argument("--memory-requests", type=int, default=20000)
    ap.add_argument("--max-tree-size", type=int, default=2097152, help="router --max-tree-size for the memory part (the chart's default)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: policies, overhead, memory")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        log_dir = Path(tmp)
        print(f"vllm-router {tools.load_specs()['vllm-router'].version}, llm-d-inference-sim {tools.load_specs()['inference-sim'].version}, {os.cpu_count()} CPUs")
        if "policies" not in skip:
            bench_policies(args, log_dir)
        if "overhead" not in skip:
            bench_overhead(args, log_dir)
        if "memory" not in skip:
            bench_memory(args, log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
