"""Exact statistics over raw per-request samples, named like the reference tools.

Locust rounds response times into buckets; SLO gates and the benchmark need
exact percentiles, so the harness keeps every raw sample and computes here.
Definitions follow ``vllm bench serve`` (and GuideLLM, whose names are given
in :data:`GUIDELLM_NAMES`):

- ``ttft``: request start to the first generated token;
- ``itl``: every gap between consecutive token-bearing chunks (all requests pooled);
- ``tpot``: per request, ``(e2el - ttft) / (output_tokens - 1)``, i.e. GuideLLM's
  ``inter_token_latency`` and ``time_per_output_token``;
- ``e2el``: request start to the last byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 90, 95, 99)
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2el")
# our metric -> GuideLLM's name for the same quantity
GUIDELLM_NAMES = {
    "ttft": "time_to_first_token_ms",
    "tpot": "inter_token_latency_ms",
    "itl": "inter_token_latency_ms (per gap)",
    "e2el": "request_latency",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean, median, std, min, max and p50/p90/p95/p99 of a sample (NaN when empty)."""
    n = len(values)
    if n == 0:
        nan = math.nan
        return {"count": 0, "mean": nan, "median": nan, "std": nan, "min": nan, "max": nan} | {
            f"p{q}": nan for q in PERCENTILES
        }
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    out = {"count": n, "mean": mean, "median": percentile(values, 50), "std": std, "min": min(values), "max": max(values)}
    out |= {f"p{q}": percentile(values, q) for q in PERCENTILES}
    return out


@dataclass
class Sample:
    """One request as measured by the Locust user (times in seconds since the epoch, latencies in ms)."""

    start: float
    model: str
    api: str
    stream: bool
    status: int
    ok: bool
    e2el_ms: float
    ttft_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    error: str = ""
    phase: str = ""

    @property
    def tpot_ms(self) -> float | None:
        if self.ttft_ms is None or self.output_tokens < 2:
            return None
        return (self.e2el_ms - self.ttft_ms) / (self.output_tokens - 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def summarize(samples: Iterable[Sample], *, duration_s: float | None = None) -> dict[str, Any]:
    """Summary with ``vllm bench serve`` names: ``mean_ttft_ms``, ``p99_itl_ms``, ``request_throughput`` ...

    ``duration_s`` is the wall time the throughput figures divide by; by
    default the span from the first request start to the last request end.
    """
    items = list(samples)
    ok = [s for s in items if s.ok]
    failed = [s for s in items if not s.ok]
    if duration_s is None:
        if items:
            first = min(s.start for s in items)
            last = max(s.start + s.e2el_ms / 1000 for s in items)
            duration_s = max(last - first, 1e-9)
        else:
            duration_s = 0.0
    series: dict[str, list[float]] = {
        "ttft": [s.ttft_ms for s in ok if s.ttft_ms is not None],
        "tpot": [t for s in ok if (t := s.tpot_ms) is not None],
        "itl": [gap for s in ok for gap in s.itl_ms],
        "e2el": [s.e2el_ms for s in ok],
    }
    errors: dict[str, int] = {}
    for s in failed:
        # HTTP errors by status; failures after a 200 (a broken stream, no usage) or without
        # any response (connection refused, timeout) by the error's type.
        key = str(s.status) if s.status and s.status != 200 else (s.error.split(":", 1)[0] or "error")
        errors[key] = errors.get(key, 0) + 1
    in_tok = sum(s.input_tokens for s in ok)
    out_tok = sum(s.output_tokens for s in ok)
    per = duration_s if duration_s > 0 else math.nan
    out: dict[str, Any] = {
        "duration_s": duration_s,
        "requests": len(items),
        "completed": len(ok),
        "failed": len(failed),
        "error_ratio": (len(failed) / len(items)) if items else 0.0,
        "errors_by_status": dict(sorted(errors.items())),
        "total_input_tokens": in_tok,
        "total_output_tokens": out_tok,
        "request_throughput": len(ok) / per,
        "output_throughput": out_tok / per,
        "total_token_throughput": (in_tok + out_tok) / per,
    }
    for metric, values in series.items():
        desc = describe(values)
        for stat, value in desc.items():
            if stat != "count":
                out[f"{stat}_{metric}_ms"] = value
    return out


def windows(samples: Sequence[Sample], width_s: float) -> list[tuple[float, list[Sample]]]:
    """Group samples by completion time into consecutive windows of ``width_s`` (offset from the first start)."""
    if not samples:
        return []
    t0 = min(s.start for s in samples)
    buckets: dict[int, list[Sample]] = {}
    for s in samples:
        end = s.start + s.e2el_ms / 1000 - t0
        buckets.setdefault(int(end // width_s), []).append(s)
    return [((i + 1) * width_s, buckets[i]) for i in sorted(buckets)]
