#!/usr/bin/env python3
"""Benchmark the real vLLM engine on the CPU with the tiny generated model.

Prints (markdown) what docs/benchmarks.md records under "vLLM engine on CPU":
- the engine venv: size on disk, per-step times of its last install (from the
  install log) and the warm `llmops tools install vllm` time;
- the tiny model: generation time (cold, in a scratch cache) and warm lookup;
- server start-up: seconds from exec to /health 200, with the args the chart
  renders for values/local-vllm.yaml, with vLLM's compile cache warm and,
  with --cold-compile, with an empty one;
- request rate, TTFT and ITL at concurrency 1, 8 and 32 (streamed chat,
  64 prompt words, 32 output tokens) measured by the Locust harness.

Usage: PYTHONPATH=src .venv/bin/python scripts/bench_engine.py [--duration 30] [--cold-compile]
Ports: 18100-18199 (the engine tier's range).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from llmops import engine, paths, tools
from llmops.engine import engine_args
from llmops.validate import render
from llmops.loadtest import harness

LOCAL_VLLM = paths.VALUES_DIR / "local-vllm.yaml"
MODEL = "tiny-llm"


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def install_figures() -> list[str]:
    spec = tools.load_specs()["vllm"]
    venv = tools.staged_venv(spec)
    log = paths.cache_root() / "logs" / f"vllm-{spec.version}.log"
    steps = re.findall(r"^## step (\S+) \(([\d.]+)s\)", log.read_text(), re.MULTILINE) if log.exists() else []
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "llmops", "tools", "install", "vllm"],
        check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src")},
    )  # fmt: skip
    warm = time.monotonic() - started
    total = sum(float(s) for _, s in steps)
    lines = [
        f"- engine venv `{venv}`: {du_bytes(venv) / 2**30:.2f} GiB",
        f"- last cold install: {total:.0f} s total ("
        + ", ".join(f"{name} {float(sec):.0f} s" for name, sec in steps)
        + ")",
        f"- warm `llmops tools install vllm`: {warm:.2f} s",
    ]
    return lines


def model_figures() -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        env_before = os.environ.get("LLMOPS_CACHE")
        # Cold: build into a scratch cache (the engine venv is found through the real one's bin link).
        python = engine.engine_python()
        os.environ["LLMOPS_CACHE"] = scratch
        try:
            (Path(scratch) / "bin").mkdir()
            (Path(scratch) / "bin" / python.name).symlink_to(python)
            started = time.monotonic()
            engine.tiny_model()
            cold = time.monotonic() - started
        finally:
            if env_before is None:
                os.environ.pop("LLMOPS_CACHE")
            else:
                os.environ["LLMOPS_CACHE"] = env_before
    engine.tiny_model()
    started = time.monotonic()
    path = engine.tiny_model()
    warm = time.monotonic() - started
    return [
        f"- tiny model generation (cold): {cold:.1f} s; cached lookup: {warm * 1000:.1f} ms; "
        f"size {du_bytes(path) / 2**20:.1f} MiB"
    ]


def rendered_argv() -> list[str]:
    manifests = render.render("llmops-stack", [LOCAL_VLLM])
    values = engine_args.vllm_values([LOCAL_VLLM])
    (args,) = engine_args.engine_args(manifests).values()
    argv = engine_args.parser_argv([str(x) for x in values.get("vllmCommand") or []], args)
    return engine.replace_option(argv, "--model", str(engine.tiny_model()))


def start_server(log: Path, extra_env: dict[str, str] | None = None) -> engine.EngineServer:
    server = engine.EngineServer(rendered_argv(), port=engine.free_port(), log=log, env=extra_env)
    return server.start(timeout=900)


def load_figures(server: engine.EngineServer, out: Path, duration: int, levels: list[int]) -> list[str]:
    profile = {
        "name": "engine-bench",
        "description": "streamed chat, fixed 64 prompt words / 32 output tokens",
        "api": "chat",
        "stream": True,
        "prompt_tokens": {"dist": "fixed", "value": 64},
        "output_tokens": {"dist": "fixed", "value": 32},
        "load": {"shape": "concurrency", "users": 1, "duration": f"{duration}s"},
    }
    path = out / "engine-bench.yaml"
    path.write_text(yaml.safe_dump(profile))
    rows = [
        "| concurrency | requests | req/s | output tok/s | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for users in levels:
        outcome = harness.execute(
            targets={MODEL: [server.url]}, profile=path, slo_ref=None, report_dir=out / f"c{users}",
            load_overrides={"users": users}, quiet=True, plots=False, title=f"bench c={users}",
        )  # fmt: skip
        s = outcome.summary
        rows.append(
            f"| {users} | {s['requests']} | {s['request_throughput']:.1f} | {s['output_throughput']:.0f} "
            f"| {s['median_ttft_ms']:.0f} | {s['p95_ttft_ms']:.0f} | {s['median_itl_ms']:.1f} | {s['p95_itl_ms']:.1f} "
            f"| {s['failed']} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per concurrency level (default 30)")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--cold-compile", action="store_true", help="also time a start with an empty compile cache")
    opts = parser.parse_args()
    levels = [int(x) for x in opts.levels.split(",")]
    lines = ["### Environment and model", *install_figures(), *model_figures()]
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        out = Path(tmp)
        if opts.cold_compile:
            cold = start_server(out / "cold.log", {"VLLM_CACHE_ROOT": str(out / "vllm-cache")})
            lines.append(f"- server start-up, empty compile cache: {cold.startup_seconds:.1f} s")
            cold.stop()
        server = start_server(out / "server.log")
        try:
            lines.append(f"- server start-up, warm compile cache: {server.startup_seconds:.1f} s (exec -> /health 200)")
            print("\n".join(lines), flush=True)
            rows = load_figures(server, out, opts.duration, levels)
        finally:
            server.stop()
    print("\n### Load (Locust harness, streamed chat, 64 prompt words, 32 output tokens, "
          f"{opts.duration} s per level)\n")  # fmt: skip
    print("\n".join(rows))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
