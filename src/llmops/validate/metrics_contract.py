"""The one list of metric names the charts may use, and who exports each.

Alerts, recording rules, dashboards and autoscaling triggers may only read
metrics listed here (checked by tests/unit/observability). Each entry says
which exporter produces it, so the engine tests can check the vLLM list
against the real vLLM server and llm-d-inference-sim, and a reviewer can
check the rest against DCGM exporter and kube-state-metrics.

Sources (read from the exporters' code, not guessed):
- vLLM 0.32 (``vllm/v1/metrics/loggers.py`` and the FastAPI instrumentator);
- llm-d-inference-sim v0.10.2 (``pkg/llm-d-inference-sim/metrics.go``);
- dcgm-exporter ``etc/default-counters.csv`` (ECC counters are commented out
  there: ``default_counter=False``; charts/gpu's dcgm-metrics ConfigMap lists
  every DCGM metric here, so the exporter collects them);
- the vLLM Router 0.1.17 (``src/metrics.rs`` of vllm-project/router; the
  names were also read off a running router by tests/e2e/router);
- kube-state-metrics pod, deployment and HPA collectors;
- Prometheus itself (``up``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    exporter: str  # vllm | vllm-router | dcgm | kube-state-metrics | prometheus
    type: str  # gauge | counter | histogram
    simulator: bool = False  # llm-d-inference-sim exports it too (vllm metrics only)
    default_counter: bool = True  # dcgm: in the exporter's default CSV
    on_traffic: bool = True  # vllm-router: present once a request (or a 404) went through; False: only after retries/failures


METRICS: tuple[Metric, ...] = (
    # vLLM engine (label model_name; pods add namespace/pod/llmops_model via the monitor)
    Metric("vllm:num_requests_running", "vllm", "gauge", simulator=True),
    Metric("vllm:num_requests_waiting", "vllm", "gauge", simulator=True),
    Metric("vllm:kv_cache_usage_perc", "vllm", "gauge", simulator=True),
    Metric("vllm:prompt_tokens_total", "vllm", "counter", simulator=True),
    Metric("vllm:generation_tokens_total", "vllm", "counter", simulator=True),
    Metric("vllm:request_success_total", "vllm", "counter", simulator=True),
    Metric("vllm:time_to_first_token_seconds", "vllm", "histogram", simulator=True),
    Metric("vllm:inter_token_latency_seconds", "vllm", "histogram", simulator=True),
    Metric("vllm:e2e_request_latency_seconds", "vllm", "histogram", simulator=True),
    Metric("vllm:request_queue_time_seconds", "vllm", "histogram", simulator=True),
    Metric("http_requests_total", "vllm", "counter"),
    # vLLM Router (label worker = engine URL; route; the monitor adds namespace/pod/llmops_release)
    Metric("vllm_router_requests_total", "vllm-router", "counter"),
    Metric("vllm_router_request_errors_total", "vllm-router", "counter"),
    Metric("vllm_router_processed_requests_total", "vllm-router", "counter"),
    Metric("vllm_router_running_requests", "vllm-router", "gauge"),
    Metric("vllm_router_worker_health", "vllm-router", "gauge"),
    Metric("vllm_router_cb_state", "vllm-router", "gauge"),
    Metric("vllm_router_generate_duration_seconds", "vllm-router", "histogram"),
    Metric("vllm_router_prefix_routing_decisions_total", "vllm-router", "counter"),
    Metric("vllm_router_retries_total", "vllm-router", "counter", on_traffic=False),
    Metric("vllm_router_retries_exhausted_total", "vllm-router", "counter", on_traffic=False),
    # DCGM exporter (GPU Operator)
    Metric("DCGM_FI_DEV_GPU_UTIL", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_FB_USED", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_FB_FREE", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_POWER_USAGE", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_GPU_TEMP", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_XID_ERRORS", "dcgm", "gauge"),
    Metric("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "dcgm", "counter", default_counter=False),
    # kube-state-metrics
    Metric("kube_pod_container_status_restarts_total", "kube-state-metrics", "counter"),
    Metric("kube_pod_container_status_last_terminated_reason", "kube-state-metrics", "gauge"),
    Metric("kube_deployment_status_replicas_available", "kube-state-metrics", "gauge"),
    Metric("kube_deployment_spec_replicas", "kube-state-metrics", "gauge"),
    Metric("kube_horizontalpodautoscaler_status_desired_replicas", "kube-state-metrics", "gauge"),
    Metric("kube_horizontalpodautoscaler_status_current_replicas", "kube-state-metrics", "gauge"),
    Metric("kube_horizontalpodautoscaler_spec_max_replicas", "kube-state-metrics", "gauge"),
    # Prometheus
    Metric("up", "prometheus", "gauge"),
)

# Prefix of the series our own recording rules define.
RECORDED_PREFIX = "llmops:"


def by_exporter(exporter: str) -> list[Metric]:
    return [m for m in METRICS if m.exporter == exporter]


def series_names() -> set[str]:
    """Every series name a query may select: histograms add _bucket, _sum and _count."""
    out: set[str] = set()
    for m in METRICS:
        if m.type == "histogram":
            out |= {f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count"}
        else:
            out.add(m.name)
    return out


_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "atan2",
    # aggregation operators may stand before their `by (...)` without a parenthesis
    "sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio",
}
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'  # strings
    r"|\{[^}]*\}"  # label matchers
    r"|\[[^\]]*\]"  # range/subquery windows
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
    r"|\d[\w.]*"  # numbers and durations (5m, 1h30m)
    r"|\S",
)


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels and strings skipped).

    Identifiers inside ``by (...)``/``without (...)``/``on (...)`` groupings are
    label names, not metrics; the scanner skips those groups too.
    """
    names: set[str] = set()
    skip_group = False
    depth_to_skip: list[int] = []
    depth = 0
    for tok in _TOKEN.finditer(expr):
        text = tok.group(0)
        ident = tok.group("ident")
        if ident is not None:
            lower = ident.lower()
            if tok.group("call"):
                depth += 1
                if lower in {"by", "without", "on", "ignoring", "group_left", "group_right"}:
                    depth_to_skip.append(depth)
                continue
            if depth_to_skip and depth_to_skip[-1] <= depth:
                continue
            if lower in _KEYWORDS:
                skip_group = lower in {"by", "without", "on", "ignoring", "group_left", "group_right"}
                continue
            names.add(ident)
            continue
        if text == "(":
            depth += 1
            if skip_group:
                depth_to_skip.append(depth)
            skip_group = False
        elif text == ")":
            if depth_to_skip and depth_to_skip[-1] == depth:
                depth_to_skip.pop()
            depth -= 1
        else:
            skip_group = False
    return names


def unknown_metrics(expr: str, recorded: frozenset[str] | set[str] = frozenset()) -> set[str]:
    """Names in EXPR that are neither in the contract nor in RECORDED (our recording rules' names)."""
    known = series_names() | set(recorded)
    return {n for n in metric_names_in(expr) if n not in known}
