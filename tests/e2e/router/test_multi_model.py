"""The pinned vLLM Router on the host in front of real llm-d-inference-sim processes.

Two base models (one serving a LoRA adapter) behind one URL: the router lists
them, sends each request only to its model's simulator (checked against the
simulators' own vllm:request_success_total counters) and answers an unknown
model with an OpenAI-style 404. Ports 18300-18302 and 18309.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import procs
from llmops.engine.router import HostRouter, request, start_simulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("router-host")]

ROUTER_PORT, METRICS_PORT = 18300, 18309  # router host range 18300-18319
SIM_A, SIM_B = 18301, 18302


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostRouter]:
    logs = tmp_path_factory.mktemp("router")
    lora = '{"name":"chat-lora","path":"/adapters/chat-lora"}'
    sims = [
        start_simulator(SIM_A, "chat", logs / "chat.log", "--lora-modules", lora, "--max-loras", "2"),
        start_simulator(SIM_B, "code", logs / "code.log"),
    ]
    router = HostRouter(ROUTER_PORT, METRICS_PORT, policy="cache_aware", log=logs / "router.log")
    try:
        router.start()
        # As the chart's pod discovery does: no model id, the router asks the worker.
        router.add_worker(f"http://127.0.0.1:{SIM_A}")
        router.add_worker(f"http://127.0.0.1:{SIM_B}")
        yield router
    finally:
        router.stop()
        for sim in sims:
            procs.stop_process(sim, 10)


def _chat(router: HostRouter, model: str) -> tuple[int, object]:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    return request(f"{router.url}/v1/chat/completions", body)


def _served(port: int) -> dict[str, float]:
    """The simulator's own success counter per model_name label."""
    _, text = request(f"http://127.0.0.1:{port}/metrics")
    out: dict[str, float] = {}
    for m in re.finditer(r'^vllm:request_success_total\{([^}]*)\} (\S+)$', str(text), re.M):
        name = re.search(r'model_name="([^"]+)"', m.group(1))
        key = name.group(1) if name else "?"
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def _total(port: int) -> float:
    return sum(_served(port).values())


def test_discovery_style_registration_learns_each_workers_model(fleet: HostRouter) -> None:
    by_url = {w["url"]: w["model_id"] for w in fleet.workers()}
    assert by_url == {f"http://127.0.0.1:{SIM_A}": "chat", f"http://127.0.0.1:{SIM_B}": "code"}


def test_each_request_is_answered_only_by_its_models_simulator(fleet: HostRouter) -> None:
    before_a, before_b = _total(SIM_A), _total(SIM_B)
    for _ in range(5):
        status, body = _chat(fleet, "chat")
        assert status == 200 and isinstance(body, dict) and body["model"] == "chat"
    assert (_total(SIM_A) - before_a, _total(SIM_B) - before_b) == (5, 0)
    for _ in range(3):
        status, body = _chat(fleet, "code")
        assert status == 200 and isinstance(body, dict) and body["model"] == "code"
    assert (_total(SIM_A) - before_a, _total(SIM_B) - before_b) == (5, 3)


def test_unknown_model_gets_an_openai_style_404_and_no_models_answer(fleet: HostRouter) -> None:
    # The router forwards a model it does not know to some worker (0.1.17
    # drops the model filter when no worker has it); the engine refuses the
    # name, so the client gets the engine's OpenAI error and no answer.
    before = _total(SIM_A) + _total(SIM_B)
    for _ in range(4):
        status, body = _chat(fleet, "llama-9000")
        assert status == 404
        assert isinstance(body, dict) and body["error"]["code"] == 404 and "llama-9000" in body["error"]["message"]
    assert _total(SIM_A) + _total(SIM_B) == before


def test_lora_adapter_is_not_registered_by_discovery(fleet: HostRouter) -> None:
    # The router takes only the first entry of a worker's /v1/models; the
    # simulator lists the adapter second, so discovery alone leaves it out of
    # the registry (requests naming it then go to an arbitrary worker).
    _, listed = request(f"http://127.0.0.1:{SIM_A}/v1/models")
    assert isinstance(listed, dict) and [m["id"] for m in listed["data"]] == ["chat", "chat-lora"]
    assert fleet.models() == ["chat", "code"]


def test_two_models_and_a_lora_adapter_behind_one_url_when_the_adapter_is_registered(fleet: HostRouter) -> None:
    # An adapter joins under its own model id (the worker registry is keyed by
    # URL, so the same simulator is registered under a second spelling).
    fleet.add_worker(f"http://localhost:{SIM_A}", model_id="chat-lora")
    try:
        # IGW's list shape is {"models": [...]}, not OpenAI's {"object": "list", "data": [...]}.
        status, body = request(f"{fleet.url}/v1/models")
        assert status == 200 and isinstance(body, dict) and sorted(body["models"]) == ["chat", "chat-lora", "code"]
        before_a, before_b = _total(SIM_A), _total(SIM_B)
        for _ in range(12):
            status, answer = _chat(fleet, "chat-lora")
            assert status == 200 and isinstance(answer, dict) and answer["model"] == "chat-lora"
        assert (_total(SIM_A) - before_a, _total(SIM_B) - before_b) == (12, 0)
    finally:
        fleet.remove_worker(f"http://localhost:{SIM_A}")
    assert fleet.models() == ["chat", "code"]


def test_router_exports_the_metrics_the_chart_reads(fleet: HostRouter) -> None:
    from llmops.validate import metrics_contract

    _chat(fleet, "chat")
    _chat(fleet, "no-such-model")
    _, text = request(fleet.metrics_url)
    present = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", str(text), re.M)}
    expected = {f"{m.name}_bucket" if m.type == "histogram" else m.name for m in metrics_contract.by_exporter("vllm-router") if m.on_traffic}
    assert expected, "the contract lists the router's metrics"
    assert expected - present == set()
