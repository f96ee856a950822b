"""llmops.validate.metrics_contract: the list of metric names and the PromQL name scanner."""

from __future__ import annotations

import pytest

from llmops.validate import metrics_contract as mc


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, namespace) (rate(vllm:time_to_first_token_seconds_bucket{le=~"2\\\\.5"}[5m]))', {"vllm:time_to_first_token_seconds_bucket"}),
        ("sum without(pod) (up) / on(namespace) group_left(model) foo:bar offset 5m", {"up", "foo:bar"}),
        ("count(x) by (y) > bool 3 unless z", {"x", "z"}),
        ("histogram_quantile(0.95, a) * 1.5e3 or vector(0)", {"a"}),
    ],
)
def test_scanner_finds_metric_names_and_skips_functions_labels_and_keywords(expr: str, names: set[str]) -> None:
    assert mc.metric_names_in(expr) == names


def test_histograms_allow_bucket_sum_and_count_series_but_not_the_bare_name() -> None:
    series = mc.series_names()
    assert {"vllm:time_to_first_token_seconds_bucket", "vllm:time_to_first_token_seconds_count"} <= series
    assert "vllm:time_to_first_token_seconds" not in series


def test_unknown_metrics_reports_typos_and_unrecorded_names() -> None:
    assert mc.unknown_metrics("sum(vllm:num_request_waiting)") == {"vllm:num_request_waiting"}
    assert mc.unknown_metrics("llmops:x:rate5m") == {"llmops:x:rate5m"}
    assert mc.unknown_metrics("llmops:x:rate5m", {"llmops:x:rate5m"}) == set()


def test_deprecated_vllm_gpu_cache_metric_is_not_in_the_contract() -> None:
    assert "vllm:gpu_cache_usage_perc" not in {m.name for m in mc.METRICS}
    assert {m.name for m in mc.by_exporter("vllm") if m.simulator} >= {
        "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds"
    }
