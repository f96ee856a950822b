#!/usr/bin/env python3
"""Benchmark: the vLLM Router's added latency at the highest rate one Locust process sustains, and its memory over a long run.

Usage: PYTHONPATH=src .venv/bin/python scripts/bench_router_load.py [--parts overhead,memory]
       [--users 16] [--seconds 30] [--rate-fractions 0.25,0.5,1.0] [--memory-minutes 15] [--memory-requests 1000000]

1. overhead: one llm-d-inference-sim with zero latency (TTFT 0, ITL 0) on the
   host, the pinned router in front (IGW mode, the chart's cache_aware policy
   and prefix-tree size). One Locust process (FastHttpUser, USERS users, no
   wait) first finds the highest rate it sustains through the router; then
   one Locust process drives both paths at once (half the users straight to
   the simulator, half through the router, so the machine's other load hits
   both alike) at RATE_FRACTIONS of that rate in total (constant_throughput
   per user), SECONDS each, non-streamed 1-token chat requests on kept-alive
   connections.
   Percentiles come from every raw sample (Locust's own stats round them).
2. memory: the router (cache_aware, the chart's --max-tree-size, 4 zero-latency
   simulators) under one Locust process at full speed with a distinct
   200-word prompt per request (the prefix tree's worst case) until
   MEMORY_REQUESTS requests or MEMORY_MINUTES minutes, whichever comes first;
   the router's VmRSS is printed against the request count every 30 s.

Ports 18310-18319 (the bench part of the router's host range 18300-18319);
every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from llmops import procs, tools
from llmops.engine.router import HostRouter, request

from bench_router import pct, rss_mib, stop_all, wait_started  # scripts/ is on sys.path when a script runs  # noqa: E402

ROUTER_PORT, METRICS_PORT = 18310, 18319
SIM_PORTS = (18311, 18312, 18313, 18314)
MODEL = "bench"
# The chart's defaults (charts/router/values.yaml): cacheAware.maxTreeSize, evictionIntervalSeconds.
MAX_TREE_SIZE = 2097152
EVICTION_S = 10

LOCUSTFILE = textwrap.dedent('''
    import json, os, random
    from locust import FastHttpUser, constant_throughput, events, task

    RATE = float(os.environ.get("BENCH_RATE_PER_USER", "0"))
    DISTINCT = os.environ.get("BENCH_DISTINCT") == "1"
    WORDS = [f"w{i}" for i in range(5000)]
    samples, failures = {}, [0]

    @events.request.add_listener
    def _on_request(name, response_time, exception, **_):
        if exception is None:
            samples.setdefault(name, []).append(response_time)
        else:
            failures[0] += 1

    @events.quitting.add_listener
    def _dump(**_):
        with open(os.environ["BENCH_OUT"], "w") as fh:
            json.dump({"ms": samples, "failures": failures[0]}, fh)

    class Base(FastHttpUser):
        abstract = True
        if RATE > 0:
            wait_time = constant_throughput(RATE)

        def chat(self, name):
            text = " ".join(random.choices(WORDS, k=200)) if DISTINCT else "hi"
            body = {"model": "%s", "messages": [{"role": "user", "content": text}], "max_tokens": 1}
            self.client.post("/v1/chat/completions", json=body, name=name)

    # Both paths in one process at once, so the machine's other load hits
    # them alike: users alternate between the classes (equal weights).
    if os.environ.get("BENCH_ROUTER"):
        class Router(Base):
            host = os.environ["BENCH_ROUTER"]

            @task
            def go(self):
                self.chat("router")

    if os.environ.get("BENCH_DIRECT"):
        class Direct(Base):
            host = os.environ["BENCH_DIRECT"]

            @task
            def go(self):
                self.chat("direct")
''' % MODEL)


def start_sims(log_dir: Path, ports: tuple[int, ...]) -> list[subprocess.Popen[bytes]]:
    sims = []
    for port in ports:
        argv = [str(tools.require("llm-d-inference-sim")), "--model", MODEL, "--port", str(port), "--mode", "random",
                "--force-dummy-tokenizer", "--max-num-seqs", "1024", "--time-to-first-token", "0",
                "--inter-token-latency", "0"]  # fmt: skip
        with (log_dir / f"sim-{port}.log").open("wb") as fh:
            sims.append(subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT))
    return wait_started(sims, ports, log_dir)


def start_router(log_dir: Path, ports: tuple[int, ...], eviction_s: int = EVICTION_S) -> HostRouter:
    router = HostRouter(ROUTER_PORT, METRICS_PORT, policy="cache_aware", log=log_dir / "router.log", extra_args=[
        "--max-tree-size", str(MAX_TREE_SIZE), "--eviction-interval-secs", str(eviction_s),
        "--max-concurrent-requests", "4096", "--queue-size", "1024"])  # fmt: skip
    router.start()
    for port in ports:
        router.add_worker(f"http://127.0.0.1:{port}", model_id=MODEL)
    return router


def locust(log_dir: Path, seconds: float, users: int, *, router: str = "", direct: str = "", rate_per_user: float = 0.0,
           distinct: bool = False) -> tuple[dict[str, list[float]], int, float]:
    """One headless Locust process: (raw response times in ms per path, failures, seconds of load)."""
    locustfile = log_dir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    out = log_dir / f"locust-{time.monotonic_ns()}.json"
    env = {**os.environ, "BENCH_OUT": str(out), "BENCH_RATE_PER_USER": str(rate_per_user),
           "BENCH_DISTINCT": "1" if distinct else "0", "BENCH_ROUTER": router, "BENCH_DIRECT": direct}
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{int(seconds)}s", "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]
    t0 = time.monotonic()
    subprocess.run(argv, env=env, check=False, stdout=subprocess.DEVNULL, stderr=(log_dir / "locust.err").open("ab"),
                   timeout=seconds + 120)
    wall = time.monotonic() - t0
    data = json.loads(out.read_text())
    return {k: list(v) for k, v in data["ms"].items()}, int(data["failures"]), min(wall, seconds)


def router_counter(router: HostRouter, name: str) -> float:
    _, text = request(router.metrics_url, timeout=10)
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", str(text), re.M))


def bench_overhead(args: argparse.Namespace, log_dir: Path) -> None:
    port = SIM_PORTS[0]
    sims = start_sims(log_dir, (port,))
    try:
        router = start_router(log_dir, (port,))
        try:
            locust(log_dir, 10, args.users, router=router.url)  # warm-up
            ms, fails, wall = locust(log_dir, args.seconds, args.users, router=router.url)
            top = len(ms.get("router", [])) / wall
            print(f"\n## Overhead: highest rate one Locust process sustains through the router: {top:.0f} req/s "
                  f"({args.users} users, no wait, {len(ms.get('router', []))} requests, {fails} failures)")
            for fraction in (float(f) for f in args.rate_fractions.split(",")):
                rate = top * fraction
                per_user = rate / args.users
                ms, fails, wall = locust(log_dir, args.seconds, args.users, router=router.url,
                                         direct=f"http://127.0.0.1:{port}", rate_per_user=per_user)
                rows = {name: (ms.get(key, []), len(ms.get(key, [])) / wall)
                        for name, key in (("direct to the simulator", "direct"), ("through the router", "router"))}
                print_overhead(fraction, rate, per_user, rows, fails, args.seconds, os.getloadavg()[0])
        finally:
            router.stop()
    finally:
        stop_all(sims)


def print_overhead(fraction: float, rate: float, per_user: float, rows: dict[str, tuple[list[float], float]],
                   fails: int, seconds: float, load: float) -> None:
    print(f"\nBoth paths at once in one Locust process, {rate:.0f} req/s offered in total ({fraction:.0%} of the "
          f"highest rate; constant_throughput {per_user:.2f}/s per user, half the users on each path), {seconds:.0f} s, "
          f"{fails} failures, load average {load:.1f}:")
    print("| path | achieved req/s | p50 ms | p90 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (ms, rps) in rows.items():
        print(f"| {name} | {rps:.0f} | {pct(ms, 0.5):.2f} | {pct(ms, 0.9):.2f} | {pct(ms, 0.99):.2f} |")
    d, r = rows["direct to the simulator"][0], rows["through the router"][0]
    print(f"| added by the router | | {pct(r, 0.5) - pct(d, 0.5):.2f} | {pct(r, 0.9) - pct(d, 0.9):.2f} | "
          f"{pct(r, 0.99) - pct(d, 0.99):.2f} |", flush=True)


def bench_memory(args: argparse.Namespace, log_dir: Path) -> None:
    sims = start_sims(log_dir, SIM_PORTS)
    try:
        router = start_router(log_dir, SIM_PORTS, args.eviction_seconds)
        try:
            print(f"\n## Memory: cache_aware, --max-tree-size {MAX_TREE_SIZE}, eviction every {args.eviction_seconds} s, "
                  f"4 zero-latency simulators, distinct 200-word prompts, one Locust process ({args.users} users, no wait)")
            # No prefix-tree size column: 0.1.17 declares vllm_router_tree_size but never sets it.
            print("| minutes | requests served | req/s (window) | router RSS MiB |")
            print("| ---: | ---: | ---: | ---: |")
            print(f"| 0.0 | 0 | | {rss_mib(router.pid):.0f} |", flush=True)
            limit_s = args.memory_minutes * 60
            out = log_dir / "memory-locust.json"
            locustfile = log_dir / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            env = {**os.environ, "BENCH_OUT": str(out), "BENCH_RATE_PER_USER": "0", "BENCH_DISTINCT": "1",
                   "BENCH_ROUTER": router.url, "BENCH_DIRECT": ""}
            argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(args.users),
                    "-r", str(args.users), "-t", f"{int(limit_s)}s", "--only-summary",
                    "--loglevel", "WARNING", "--stop-timeout", "5"]  # fmt: skip
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=(log_dir / "locust.err").open("ab"))
            last_n, last_t, peak = 0.0, t0, 0.0
            try:
                while proc.poll() is None:
                    time.sleep(30)
                    n = router_counter(router, "vllm_router_requests_total")
                    now = time.monotonic()
                    rss = rss_mib(router.pid)
                    peak = max(peak, rss)
                    print(f"| {(now - t0) / 60:.1f} | {n:.0f} | {(n - last_n) / (now - last_t):.0f} | {rss:.0f} |", flush=True)
                    last_n, last_t = n, now
                    if n >= args.memory_requests:
                        proc.terminate()
            finally:
                procs.stop_process(proc, 30)
            time.sleep(args.eviction_seconds + 5)  # one more eviction pass with no traffic
            n = router_counter(router, "vllm_router_requests_total")
            errors = router_counter(router, "vllm_router_request_errors_total")
            print(f"after {n:.0f} requests ({errors:.0f} router-side errors) and one idle eviction pass: RSS "
                  f"{rss_mib(router.pid):.0f} MiB (peak sampled {peak:.0f} MiB)", flush=True)
        finally:
            router.stop()
    finally:
        stop_all(sims)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="overhead,memory", help="comma list: overhead, memory")
    ap.add_argument("--users", type=int, default=16, help="Locust users (one process)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per overhead run")
    ap.add_argument("--rate-fractions", default="0.25,0.5,1.0",
                    help="offered rates for the comparison, as fractions of the highest rate found")
    ap.add_argument("--memory-minutes", type=float, default=15.0)
    ap.add_argument("--memory-requests", type=int, default=1_000_000)
    ap.add_argument("--eviction-seconds", type=int, default=EVICTION_S,
                    help="router --eviction-interval-secs for the memory part (default: the chart's)")
    args = ap.parse_args()
    parts = set(filter(None, args.parts.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-router-load-") as tmp:
        log_dir = Path(tmp)
        print(f"vllm-router {tools.load_specs()['vllm-router'].version}, llm-d-inference-sim "
              f"{tools.load_specs()['inference-sim'].version}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        if "overhead" in parts:
            bench_overhead(args, log_dir)
        if "memory" in parts:
            bench_memory(args, log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
