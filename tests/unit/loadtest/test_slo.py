"""SLO files: validation, verdicts, and the breach message's margin."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmops.errors import LlmopsError
from llmops.loadtest import slo


def _slos(*items: dict) -> list[slo.Slo]:
    return slo.parse({"slos": list(items)})


def test_latency_slo_reads_the_stat_key_and_breach_names_the_margin() -> None:
    (result,) = slo.evaluate(_slos({"metric": "ttft", "stat": "p95", "max": 500}), {"p95_ttft_ms": 612.5})
    assert not result.ok
    assert result.message == "ttft p95 = 612.5 ms > max 500.0 ms (breached by 112.5 ms, 22.5%)"


def test_slo_within_bound_passes() -> None:
    (result,) = slo.evaluate(_slos({"metric": "itl", "stat": "p99", "max": 50}), {"p99_itl_ms": 49.9})
    assert result.ok


def test_min_bound_on_throughput_reports_shortfall() -> None:
    (result,) = slo.evaluate(_slos({"metric": "request_throughput", "min": 10}), {"request_throughput": 7.5})
    assert not result.ok and "short by 2.5" in result.message and "25.0%" in result.message


def test_error_ratio_breach() -> None:
    (result,) = slo.evaluate(_slos({"metric": "error_ratio", "max": 0.01}), {"error_ratio": 0.05})
    assert not result.ok and "error_ratio = 0.05 > max 0.01" in result.message


def test_nan_observation_is_a_breach_not_a_pass() -> None:
    (result,) = slo.evaluate(_slos({"metric": "ttft", "stat": "p50", "max": 1}), {"p50_ttft_ms": math.nan})
    assert not result.ok and "no samples" in result.message


def test_every_problem_in_an_slo_file_is_reported_at_once() -> None:
    with pytest.raises(LlmopsError) as err:
        slo.parse({"slos": [{"metric": "ttft", "stat": "p42", "max": 1}, {"metric": "error_ratio"},
                            {"metric": "itl", "stat": "p95", "max": "fast"}, {"metric": "ttft", "stat": "p95", "maxx": 3}]})  # fmt: skip
    text = str(err.value)
    assert "slos[0].stat: 'p42'" in text
    assert "slos[1]: needs `max:` or `min:`" in text
    assert "slos[2].max: 'fast' is not a number" in text
    assert "slos[3]: unknown key(s) maxx" in text


def test_unknown_summary_key_is_a_usage_error() -> None:
    with pytest.raises(LlmopsError, match="no `goodput`"):
        slo.evaluate(_slos({"metric": "goodput", "min": 1}), {"request_throughput": 1.0})


def test_shipped_slo_files_parse(repo_root: Path) -> None:
    files = sorted((repo_root / "loadtests" / "slo").glob("*.yaml"))
    assert files
    for f in files:
        assert slo.load(f)
