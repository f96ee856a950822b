"""One list (llmops.validate.metrics_contract), one test, both engines.

Every vLLM metric that alerts, recording rules, dashboards and KEDA triggers
may read must exist on the real vLLM server's /metrics after load, and those
the contract marks ``simulator=True`` on llm-d-inference-sim's /metrics too
(the simulator is what the cluster and e2e tiers scale on).
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from llmops import engine
from llmops.validate import metrics_contract

if TYPE_CHECKING:
    from conftest import LoadRun

MODEL = "tiny-llm"
pytestmark = pytest.mark.xdist_group("vllm-engine")


def _exported(text: str) -> set[str]:
    return {name for name, _, _ in engine.parse_metrics(text)}


def _required(metric: metrics_contract.Metric) -> set[str]:
    if metric.type == "histogram":
        return {f"{metric.name}_{s}" for s in ("bucket", "sum", "count")}
    return {metric.name}


def _drive_sim(url: str, n: int = 6) -> None:
    """More concurrent requests than the sim's --max-num-seqs 2, so some queue (queue-time histogram)."""

    def one(i: int) -> None:
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 8,
                "stream": i % 2 == 0, "stream_options": {"include_usage": True}}  # fmt: skip
        req = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(one, range(n)))


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["vllm", "llm-d-inference-sim"])
def test_every_contract_vllm_metric_is_exported_after_load(engine_name: str, request: pytest.FixtureRequest) -> None:
    contract = metrics_contract.by_exporter("vllm")
    assert contract, "the metrics contract lists no vLLM metrics"
    if engine_name == "vllm":
        run: LoadRun = request.getfixturevalue("load_run")
        text = run.after
        wanted = contract
    else:
        url: str = request.getfixturevalue("sim_server")
        _drive_sim(url)
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        wanted = [m for m in contract if m.simulator]
    exported = _exported(text)
    missing = {m.name: sorted(_required(m) - exported) for m in wanted if _required(m) - exported}
    assert not missing, f"{engine_name} does not export contract metrics: {missing}"
    if engine_name != "vllm":
        # The flag must not be stale the other way either: a metric the
        # simulator does export should be marked simulator=True.
        stale = [m.name for m in contract if not m.simulator and _required(m) <= exported]
        assert not stale, f"llm-d-inference-sim exports {stale}: mark them simulator=True in the contract"
    # The series carry the served model name, which the rules and dashboards select on.
    for m in wanted:
        if m.name.startswith("vllm:"):
            labels = [lab for name, lab, _ in engine.parse_metrics(text) if name in _required(m)]
            assert any(lab.get("model_name") == MODEL for lab in labels), f"{engine_name}: {m.name} lacks model_name"
