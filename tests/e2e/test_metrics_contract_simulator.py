"""The metrics contract against a real llm-d-inference-sim: every metric the contract
says the simulator exports appears on its /metrics after real requests."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from llmops import engine, procs, tools
from llmops.validate import metrics_contract

PORT = 17011  # concern-subcharts range 17000-17099
BASE = f"http://127.0.0.1:{PORT}"
READY_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    argv = [
        str(tools.require("llm-d-inference-sim")), "--model", "tiny-llm", "--port", str(PORT), "--mode", "random",
        "--force-dummy-tokenizer", "--max-num-seqs", "1", "--time-to-first-token", "200ms", "--inter-token-latency", "5ms",
    ]
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{BASE}/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on :{PORT} not healthy within {READY_TIMEOUT_S}s:\n{Path(log).read_text()[-2000:]}")
            time.sleep(0.2)
        yield BASE
    finally:
        procs.stop_process(proc, timeout=10)


def _chat(base: str) -> int:
    body = json.dumps({"model": "tiny-llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}).encode()
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def test_simulator_exports_every_metric_the_contract_attributes_to_it(simulator: str) -> None:
    # max-num-seqs 1 and four concurrent requests: three of them queue, so the
    # queue-time histogram gets observations too.
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(lambda _: _chat(simulator), range(4))) == {200}
    time.sleep(1.0)  # the simulator updates some metrics through channels
    with urllib.request.urlopen(f"{simulator}/metrics", timeout=5) as resp:
        exposition = resp.read().decode()
    present = {name for name, _labels, _value in engine.parse_metrics(exposition)}
    expected = set()
    for metric in metrics_contract.by_exporter("vllm"):
        if metric.simulator:
            expected.add(f"{metric.name}_bucket" if metric.type == "histogram" else metric.name)
    assert expected - present == set()
