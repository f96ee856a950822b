"""Exact percentile math and the summary's reference-tool names."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.loadtest import stats


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),  # interpolates between the two middle ranks
        ([1, 2, 3, 4, 5], 50, 3.0),
        ([10, 20], 90, 19.0),
        ([7], 99, 7.0),
        ([5, 1, 3], 0, 1.0),
        ([5, 1, 3], 100, 5.0),
    ],
)
def test_percentile_interpolates_linearly_between_closest_ranks(values: list[float], q: float, expected: float) -> None:
    assert stats.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_empty_sample_is_nan_and_out_of_range_q_is_rejected() -> None:
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200))
def test_percentile_agrees_with_numpy_linear_percentile(values: list[float]) -> None:
    # numpy is an independent implementation of the same definition (it is in the harness venv via matplotlib).
    for q in (0, 10, 50, 90, 95, 99, 99.9, 100):
        assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)
    assert stats.percentile(values, 50) == pytest.approx(statistics.median(values), abs=1e-6)


def test_percentile_resolution_is_a_hundredth() -> None:
    with pytest.raises(ValueError, match="resolution"):
        stats.percentile([1.0, 2.0], 99.995)


def test_describe_gives_population_std_and_the_reference_percentiles() -> None:
    d = stats.describe([1.0, 2.0, 3.0, 4.0])
    assert d["mean"] == 2.5 and d["median"] == 2.5 and d["std"] == pytest.approx(1.118033988749895)
    assert d["p90"] == pytest.approx(3.7) and d["count"] == 4


def _sample(start: float, ttft: float, gaps: list[float], out: int, ok: bool = True, status: int = 200) -> stats.Sample:
    e2el = ttft + sum(gaps)
    return stats.Sample(start, "m", "chat", True, status, ok, e2el, ttft, gaps, 10, out)


def test_summary_pools_every_itl_gap_and_derives_tpot_per_request() -> None:
    a = _sample(0.0, 100, [10, 10, 10], 4)  # tpot = 30/3 = 10
    b = _sample(0.0, 200, [40], 2)  # tpot = 40
    summary = stats.summarize([a, b], duration_s=2.0)
    assert summary["median_itl_ms"] == pytest.approx(10)  # pooled gaps 10,10,10,40
    assert summary["mean_itl_ms"] == pytest.approx(17.5)
    assert summary["mean_tpot_ms"] == pytest.approx(25)  # per-request mean of 10 and 40
    assert summary["mean_ttft_ms"] == pytest.approx(150)
    assert summary["request_throughput"] == pytest.approx(1.0)
    assert summary["output_throughput"] == pytest.approx(3.0)
    assert summary["total_token_throughput"] == pytest.approx(13.0)


def test_summary_counts_failures_by_status_and_excludes_them_from_latency() -> None:
    good = _sample(0.0, 100, [10], 2)
    bad = [_sample(0.0, 5000, [], 0, ok=False, status=503), _sample(0.0, 5000, [], 0, ok=False, status=503)]
    conn = stats.Sample(0.0, "m", "chat", True, 0, False, 1.0, error="ConnectionRefusedError: refused")
    broken = stats.Sample(0.0, "m", "chat", True, 200, False, 9.0, error="RuntimeError: stream ended without a usage block")
    summary = stats.summarize([good, *bad, conn, broken], duration_s=1.0)
    assert summary["errors_by_status"] == {"503": 2, "ConnectionRefusedError": 1, "RuntimeError": 1}
    assert summary["error_ratio"] == pytest.approx(0.8)
    assert summary["max_ttft_ms"] == pytest.approx(100)


def test_summary_uses_vllm_bench_serve_key_names() -> None:
    summary = stats.summarize([_sample(0.0, 100, [10, 10], 3)])
    for key in ("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "mean_e2el_ms",
                "request_throughput", "output_throughput", "total_token_throughput", "completed"):  # fmt: skip
        assert key in summary


def test_windows_group_samples_by_completion_time() -> None:
    rng = random.Random(3)
    samples = [_sample(t, 100, [], 1) for t in (rng.uniform(0, 10) for _ in range(50))]
    wins = stats.windows(samples, 2.0)
    assert sum(len(g) for _, g in wins) == 50
    t0 = min(s.start for s in samples)
    for end, group in wins:
        for s in group:
            assert end - 2.0 <= s.start + s.e2el_ms / 1000 - t0 < end
