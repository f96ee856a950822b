"""The harness measures what the simulator is configured to do (TTFT 100 ms, ITL 10 ms) within 10%."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import paths
from llmops.cluster import endpoints
from llmops.loadtest import harness


def _profile(tmp_path: Path, **overrides: Any) -> Path:
    data = {
        "name": "e2e",
        "api": "chat",
        "stream": True,
        "prompt_tokens": {"dist": "fixed", "value": 16},
        "output_tokens": {"dist": "fixed", "value": 20},
        "load": {"shape": "concurrency", "users": 4, "duration": "4s"},
        **overrides,
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_p50_ttft_and_itl_within_10_percent_of_configured(simulator: endpoints.Simulator, tmp_path: Path) -> None:
    outcome = harness.execute(
        targets={"e2e-model": [simulator.url]}, profile=_profile(tmp_path), slo_ref=None,
        report_dir=tmp_path / "report", quiet=True, plots=False,
    )  # fmt: skip
    s = outcome.summary
    ttft_ms, itl_ms = simulator.config.ttft_ms, simulator.config.itl_ms  # 100 ms, 10 ms
    assert s["failed"] == 0 and s["completed"] >= 20
    assert s["median_ttft_ms"] == pytest.approx(ttft_ms, rel=0.10)
    assert s["median_itl_ms"] == pytest.approx(itl_ms, rel=0.10)
    # usage accounting: every request produced exactly max_tokens (ignore_eos) and reported it
    assert s["total_output_tokens"] == 20 * s["completed"]
    # e2el runs to [DONE]: the simulator paces the finish and usage chunks too, so
    # e2el (and TPOT, derived from it as vllm bench serve does) sit a little above
    # ttft + 19 x itl, never below it.
    floor = ttft_ms + 19 * itl_ms
    assert floor <= s["median_e2el_ms"] <= floor * 1.2
    assert itl_ms <= s["median_tpot_ms"] <= itl_ms * 1.25


def test_non_streamed_completions_count_tokens_and_end_to_end_latency(simulator: endpoints.Simulator, tmp_path: Path) -> None:
    outcome = harness.execute(
        targets={"e2e-model": [simulator.url]},
        profile=_profile(tmp_path, api="completions", stream=False, load={"shape": "concurrency", "users": 2, "duration": "3s"}),
        slo_ref=None, report_dir=tmp_path / "report", quiet=True, plots=False,
    )  # fmt: skip
    s = outcome.summary
    ttft_ms, itl_ms = simulator.config.ttft_ms, simulator.config.itl_ms
    assert s["failed"] == 0 and s["completed"] > 0
    assert s["total_output_tokens"] == 20 * s["completed"]
    floor = ttft_ms + 19 * itl_ms
    assert floor <= s["median_e2el_ms"] <= floor * 1.2
    assert s["median_ttft_ms"] != s["median_ttft_ms"]  # NaN: no TTFT without streaming


def test_open_loop_constant_rate_offers_the_configured_rate(simulator: endpoints.Simulator, tmp_path: Path) -> None:
    outcome = harness.execute(
        targets={"e2e-model": [simulator.url]},
        profile=_profile(tmp_path, load={"shape": "constant", "rate": 20, "duration": "4s", "max_concurrency": 32}),
        slo_ref=None, report_dir=tmp_path / "report", quiet=True, plots=False,
    )  # fmt: skip
    s = outcome.summary
    # 20 req/s x 4 s: every scheduled arrival is sent and, after the window, drained to completion
    assert s["requests"] == 80 and s["failed"] == 0
    assert s["arrival_lag_p99_ms"] < 50  # the generator kept up with the schedule


def test_cli_exits_1_and_names_the_breached_slo_with_its_margin(simulator: endpoints.Simulator, tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(yaml.safe_dump({"slos": [{"metric": "ttft", "stat": "p50", "max": 50},
                                            {"metric": "error_ratio", "max": 0.01}]}))  # fmt: skip
    report = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "llmops", "loadtest", "--url", simulator.url, "--profile", str(_profile(tmp_path)),
         "--slo", str(slo), "--duration", "3s", "--users", "2", "--report-dir", str(report)],
        capture_output=True, text=True, cwd=paths.REPO_ROOT, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src")},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SLO breached: ttft p50 = " in proc.stdout and "> max 50.0 ms (breached by" in proc.stdout
    assert "error_ratio" not in proc.stdout.split("SLO breached:", 1)[1]  # only the broken SLO is named
    doc = json.loads((report / "summary.json").read_text())
    assert doc["ok"] is False and [s["ok"] for s in doc["slos"]] == [False, True]
    for name in ("summary.md", "run-locust.html", "latency_over_time.png", "ttft_histogram.png"):
        assert (report / name).stat().st_size > 0, name
