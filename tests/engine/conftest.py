"""Fixtures of the engine tier: the real vLLM engine on the CPU, one server per session.

The server runs with exactly the arguments the chart renders for
values/local-vllm.yaml; the only substitutions are the model path (the tiny
generated model instead of the claim's mount path) and host/port (loopback,
ports 18100-18199 of this tier).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmops import engine, paths, procs, tools
from llmops.engine import engine_args
from llmops.validate import render
from llmops.loadtest import harness, stats

LOCAL_VLLM = paths.VALUES_DIR / "local-vllm.yaml"
PROFILE = paths.REPO_ROOT / "loadtests" / "profiles" / "engine-cpu.yaml"
SLO = paths.REPO_ROOT / "loadtests" / "slo" / "engine-cpu.yaml"
MODEL = "tiny-llm"  # servedModelName in values/local-vllm.yaml
UMBRELLA = "llmops-stack"
# Budget for the first /health: model load plus torch.compile on 2 busy cores.
SERVER_START_TIMEOUT_S = float(os.environ.get("LLMOPS_ENGINE_START_TIMEOUT", "420"))


@pytest.fixture(scope="session")
def engine_python() -> Path:
    """The engine venv's interpreter (installed by `make bootstrap`); missing means a broken bootstrap."""
    return engine.engine_python()


@pytest.fixture(scope="session")
def tiny_model(engine_python: Path) -> Path:
    return engine.tiny_model()


@dataclass(frozen=True)
class RenderedEngine:
    """The `tiny` engine container rendered from values/local-vllm.yaml."""

    command: list[str]
    args: list[str]
    env: dict[str, str]  # literal env values the server honours on the host (VLLM_* tuning)
    container: dict[str, Any]  # the whole rendered container (probes, ports)


@pytest.fixture(scope="session")
def local_vllm_rendered() -> RenderedEngine:
    containers = engine_args.engine_containers(render.render(UMBRELLA, [LOCAL_VLLM]))
    assert "tiny" in containers, f"no engine Deployment for model tiny rendered from {LOCAL_VLLM}"
    c = containers["tiny"]
    return RenderedEngine(
        [str(x) for x in c.get("command", [])], [str(x) for x in c.get("args", [])], engine_args.host_env(c), c
    )


@pytest.fixture(scope="session")
def vllm_server(
    tiny_model: Path, local_vllm_rendered: RenderedEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[engine.EngineServer]:
    rendered = local_vllm_rendered
    argv = engine_args.parser_argv(rendered.command, rendered.args)
    argv = engine.replace_option(argv, "--model", str(tiny_model))
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    assert rendered.env.get("VLLM_CPU_KVCACHE_SPACE"), "local-vllm.yaml must size the CPU KV cache"
    server = engine.EngineServer(argv, port=engine.free_port(), log=log, env=rendered.env)
    server.start(timeout=SERVER_START_TIMEOUT_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llm-d-inference-sim (pinned as inference-sim) on a port of this tier; yields its base URL."""
    binary = tools.require(tools.load_specs()["inference-sim"].install_as)
    port = engine.free_port(range(18150, 18200))
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    argv = [str(binary), "--model", "tiny-llm", "--port", str(port), "--force-dummy-tokenizer",
            "--time-to-first-token", "20ms", "--inter-token-latency", "5ms", "--max-num-seqs", "2"]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"llm-d-inference-sim exited {proc.returncode}: {log.read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"llm-d-inference-sim not healthy within 30 s: {log.read_text()[-1500:]}")
                time.sleep(0.2)
        yield url
    finally:
        procs.stop_process(proc, timeout=10)
        engine.release_port(port)


@pytest.fixture(scope="session")
def report_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engine-reports")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


@dataclass(frozen=True)
class LoadRun:
    outcome: harness.Outcome
    samples: list[stats.Sample]
    before: str
    after: str


@pytest.fixture(scope="session")
def load_run(vllm_server: engine.EngineServer, report_root: Path) -> LoadRun:
    before = vllm_server.metrics()
    outcome = harness.execute(
        targets={MODEL: [vllm_server.url]}, profile=PROFILE, slo_ref=SLO,
        report_dir=report_root / "engine-cpu", quiet=True, plots=False, title="real vLLM on CPU",
    )  # fmt: skip
    samples = [
        stats.Sample.from_dict(json.loads(line))
        for line in (outcome.report_dir / "run-samples.jsonl").read_text().splitlines()
        if line.strip()
    ]
    # Requests in flight when Locust stopped its users are aborted, but the
    # server already counted their tokens: let it go idle before reading.
    deadline = time.monotonic() + 60
    while True:
        after = vllm_server.metrics()
        busy = engine.metric_total(after, "vllm:num_requests_running") + engine.metric_total(
            after, "vllm:num_requests_waiting"
        )
        if busy == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return LoadRun(outcome, samples, before, after)
