"""EndpointManager: real simulator processes on 18000-18099, reconciled to N replicas, registered, stopped."""

from __future__ import annotations

import http.server
import json
import os
import threading
import urllib.request
from pathlib import Path

import pytest

from llmops.cluster import endpoints
from llmops.errors import LlmopsError


def _models(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as resp:  # noqa: S310 - loopback
        return [m["id"] for m in json.load(resp)["data"]]


def test_reconcile_keeps_exactly_n_live_simulators_and_registers_them(tmp_path: Path) -> None:
    registry = tmp_path / "endpoints.json"
    config = endpoints.SimulatorConfig(model="m", served_model_names=("chat",), ttft_ms=5, itl_ms=1)
    labels = {"release": "rel", "namespace": "ns", "model_name": "m"}
    with endpoints.EndpointManager(log_dir=tmp_path, registry=registry) as mgr:
        sims = mgr.reconcile("ns/rel-m", config, 3, labels=labels)
        assert [s.index for s in sims] == [0, 1, 2]
        assert all(s.port in endpoints.PORT_RANGE and s.alive() for s in sims)
        assert len({s.port for s in sims}) == 3
        assert all(_models(s.url) == ["chat"] for s in sims)
        assert sorted(endpoints.lookup("rel", "ns", registry)["m"]["chat"]) == sorted(s.url for s in sims)

        sims[1].process.kill()  # a crashed replica is replaced
        sims[1].process.wait()
        again = mgr.reconcile("ns/rel-m", config, 3, labels=labels)
        assert len(again) == 3 and all(s.alive() for s in again)

        gone = [s for s in again if s.index >= 1]
        kept = mgr.reconcile("ns/rel-m", config, 1, labels=labels)
        assert [s.index for s in kept] == [0]
        assert all(not s.alive() for s in gone)
        assert endpoints.lookup("rel", "ns", registry) == {"m": {"chat": [kept[0].url]}}
        pids = [s.pid for s in again]
    assert endpoints.read_registry(registry) == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_engine_args_are_run_verbatim_with_the_port_replaced(tmp_path: Path) -> None:
    args = ["--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--served-model-name", "tiny-llm", "--port", "8000",
            "--mode", "random", "--time-to-first-token", "20ms", "--inter-token-latency", "2ms",
            "--max-num-seqs", "4", "--force-dummy-tokenizer"]  # fmt: skip
    config = endpoints.SimulatorConfig.from_engine_args(args)
    assert config.served == ("tiny-llm",)
    with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
        sim = mgr.start(config)
        assert _models(sim.url) == ["tiny-llm"]
        assert config.argv(sim.port)[-2:] == ["--port", str(sim.port)] and "8000" not in config.argv(sim.port)


def test_a_simulator_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    config = endpoints.SimulatorConfig(model="m", extra_args=("--no-such-flag",))
    with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
        with pytest.raises(LlmopsError, match="exited .* before /health answered"):
            mgr.start(config, timeout=10)
        assert mgr.simulators() == []


def test_health_answered_by_another_process_on_the_port_is_not_our_simulator_ready(tmp_path: Path) -> None:
    """Two test workers can pick the same free port at once: the one whose simulator fails to bind must not
    take the other's /health answer as its own (a CI run registered a dead simulator that way)."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        port = foreign.server_address[1]
        with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
            sim = endpoints.Simulator(endpoints.SimulatorConfig(model="m"), port, tmp_path / "sim.log")
            sim.start(mgr.binary)
            try:
                with pytest.raises(LlmopsError, match="exited .* before /health answered"):
                    sim.wait_ready(timeout=20)
                assert "address already in use" in sim.log_tail().lower()
            finally:
                sim.stop()
    finally:
        foreign.shutdown()
        foreign.server_close()


def test_tls_endpoint_needs_insecure_for_a_self_signed_certificate(tmp_path: Path) -> None:
    import subprocess
    import sys

    from llmops import paths

    config = endpoints.SimulatorConfig(model="m", ttft_ms=5, itl_ms=1, extra_args=("--self-signed-certs",))
    with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
        sim = mgr.start(config)
        assert sim.url.startswith("https://")
        base = [sys.executable, "-m", "llmops", "loadtest", "--url", sim.url, "--duration", "2s", "--users", "2",
                "--slo", "none", "--no-plots"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src")}
        refused = subprocess.run([*base, "--report-dir", str(tmp_path / "a")], capture_output=True, text=True,
                                 env=env, cwd=paths.REPO_ROOT, timeout=120, check=False)  # fmt: skip
        assert refused.returncode == 2 and "pass --insecure" in refused.stderr
        ok = subprocess.run([*base, "--insecure", "--report-dir", str(tmp_path / "b")], capture_output=True,
                            text=True, env=env, cwd=paths.REPO_ROOT, timeout=120, check=False)  # fmt: skip
        assert ok.returncode == 0, ok.stdout + ok.stderr
        summary = json.loads((tmp_path / "b" / "summary.json").read_text())["summary"]
        assert summary["completed"] > 0 and summary["failed"] == 0


def test_detached_simulators_outlive_the_manager_until_endpoints_down(tmp_path: Path) -> None:
    registry = tmp_path / "r.json"
    with endpoints.EndpointManager(log_dir=tmp_path, registry=registry) as mgr:
        mgr.detach()
        sim = mgr.start(endpoints.SimulatorConfig(model="kept"), labels={"release": "rel", "namespace": "ns"})
    try:
        assert _models(sim.url) == ["kept"]  # still serving after the manager exited
        assert endpoints.lookup("rel", "ns", registry) == {"kept": {"kept": [sim.url]}}
    finally:
        stopped = endpoints.stop_registered("rel", "ns", registry)
    assert stopped == [sim.url]
    assert sim.process is not None and sim.process.wait(timeout=10) is not None
    assert endpoints.read_registry(registry) == []


def test_injected_failures_are_counted_by_http_status(tmp_path: Path) -> None:
    import yaml

    from llmops.loadtest import harness

    config = endpoints.SimulatorConfig(model="flaky", ttft_ms=5, itl_ms=1,
                                       extra_args=("--failure-injection-rate", "40", "--failure-types", "rate_limit"))  # fmt: skip
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"name": "flaky", "output_tokens": 4, "load": {"shape": "concurrency", "users": 2, "duration": "2s"}}))
    slo = tmp_path / "slo.yaml"
    slo.write_text(yaml.safe_dump({"slos": [{"metric": "error_ratio", "max": 0.05}]}))
    with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
        sim = mgr.start(config)
        out = harness.execute(targets={"flaky": [sim.url]}, profile=profile, slo_ref=slo, report_dir=tmp_path / "rep",
                              quiet=True, plots=False)  # fmt: skip
    s = out.summary
    assert s["completed"] > 0 and s["failed"] > 0
    assert set(s["errors_by_status"]) == {"429"} and s["errors_by_status"]["429"] == s["failed"]
    assert 0.2 < s["error_ratio"] < 0.6
    assert not out.ok and out.breaches()[0].startswith("error_ratio = ")
