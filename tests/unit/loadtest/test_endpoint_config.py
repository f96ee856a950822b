"""Host endpoints mirror the engine pods: args from the rendered chart, port replaced, registry lookups."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmops import paths
from llmops.cluster import endpoints
from llmops.validate import render
from llmops.errors import LlmopsError

ARGS = ["--model", "org/m", "--served-model-name", "m-served", "--port", "8000", "--mode", "echo",
        "--time-to-first-token", "50ms", "--inter-token-latency", "1.5ms", "--max-num-seqs", "64",
        "--force-dummy-tokenizer"]  # fmt: skip


def test_engine_args_give_the_config_and_only_the_port_changes() -> None:
    config = endpoints.SimulatorConfig.from_engine_args(ARGS)
    assert (config.model, config.served, config.mode) == ("org/m", ("m-served",), "echo")
    assert (config.ttft_ms, config.itl_ms, config.max_num_seqs) == (50.0, 1.5, 64)
    argv = config.argv(18042)
    assert argv[-2:] == ["--port", "18042"] and "8000" not in argv
    assert [a for a in argv if a != "18042" and a != "--port"] == [a for a in ARGS if a not in ("--port", "8000")]


def test_engine_args_without_model_are_rejected() -> None:
    with pytest.raises(LlmopsError, match="no --model"):
        endpoints.SimulatorConfig.from_engine_args(["--port", "8000"])


def test_local_values_render_one_engine_deployment_per_model_with_simulator_args(helm: str) -> None:
    manifests = render.render("llmops-stack", [paths.VALUES_DIR / "local.yaml"], helm=helm, release="r", namespace="ns")
    deps = endpoints.engine_deployments(manifests, "ns")
    assert deps, "values/local.yaml has at least one model"
    for dep in deps:
        assert dep.group == f"ns/{dep.name}" and dep.name.startswith("r-")
        assert "--force-dummy-tokenizer" in dep.config.engine_args  # offline-safe, as the pod runs it
        assert dep.replicas >= 1 and dep.config.served


def test_a_real_vllm_engine_cannot_be_mirrored_by_a_simulator(helm: str) -> None:
    manifests = render.render("llmops-stack", [paths.VALUES_DIR / "local-vllm.yaml"], helm=helm)
    with pytest.raises(LlmopsError, match="can only mirror `vllm.engine: simulator`"):
        endpoints.engine_deployments(manifests, "llmops")


def test_registry_lookup_keys_by_model_label_and_drops_dead_processes(tmp_path: Path) -> None:
    registry = tmp_path / "endpoints.json"
    live, dead = os.getpid(), 2**22 + 12345  # our own pid is alive; that one is not
    entries = [
        {"url": "http://127.0.0.1:18001", "pid": live, "model": "org/m", "served_model_names": ["m-served"],
         "model_name": "tiny", "release": "r", "namespace": "ns"},
        {"url": "http://127.0.0.1:18002", "pid": dead, "model": "org/m", "served_model_names": ["m-served"],
         "model_name": "tiny", "release": "r", "namespace": "ns"},
        {"url": "http://127.0.0.1:18003", "pid": live, "model": "x", "release": "other", "namespace": "ns"},
    ]  # fmt: skip
    registry.write_text(json.dumps({"endpoints": entries}))
    assert endpoints.lookup("r", "ns", registry) == {"tiny": {"m-served": ["http://127.0.0.1:18001"]}}
    assert [e["url"] for e in endpoints.read_registry(registry)] == ["http://127.0.0.1:18001", "http://127.0.0.1:18003"]


def test_default_registry_lives_outside_the_cluster_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMOPS_ENDPOINTS_REGISTRY", raising=False)
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path))
    assert endpoints.registry_path() == tmp_path / "state" / "endpoints.json"
    monkeypatch.setenv("LLMOPS_ENDPOINTS_REGISTRY", str(tmp_path / "x.json"))
    assert endpoints.registry_path() == tmp_path / "x.json"


def test_without_port_drops_both_spellings_and_keeps_everything_else() -> None:
    args = ["--model", "m", "--port", "8000", "--max-num-seqs", "4", "--port=9000", "--portal", "x"]
    assert endpoints.without_port(args) == ["--model", "m", "--max-num-seqs", "4", "--portal", "x"]
