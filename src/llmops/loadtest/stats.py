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
import statistics
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


# statistics.quantiles cuts at i/n: n = 100 for whole percentiles, else
# 10 000 (percentiles to 0.01 exactly).
_RESOLUTION = 10_000


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100, steps of 0.01), linear between closest ranks (numpy's default).

    ``statistics.quantiles(method="inclusive")`` does the interpolation; the
    standard library keeps the Locust pod's image free of numpy.
    """
    return _percentiles(values, [q])[0]


def _percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"percentile {q} outside 0..100")
        if abs(q * 100 - round(q * 100)) > 1e-9:
            raise ValueError(f"percentile {q}: resolution is 0.01")
    if not values:
        return [math.nan for _ in qs]
    if len(values) == 1:
        return [float(values[0]) for _ in qs]
    n = 100 if all(float(q).is_integer() for q in qs) else _RESOLUTION
    cuts = statistics.quantiles(values, n=n, method="inclusive")
    low, high = min(values), max(values)
    out = []
    for q in qs:
        i = round(q * n / 100)
        out.append(float(low) if i == 0 else float(high) if i == n else cuts[i - 1])
    return out


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean, median, std (population), min, max and p50/p90/p95/p99 of a sample (NaN when empty)."""
    n = len(values)
    if n == 0:
        nan = math.nan
        return {"count": 0, "mean": nan, "median": nan, "std": nan, "min": nan, "max": nan} | {
            f"p{q}": nan for q in PERCENTILES
        }
    pcts = _percentiles(values, PERCENTILES)
    out = {"count": n, "mean": statistics.fmean(values), "median": statistics.median(values),
           "std": statistics.pstdev(values), "min": min(values), "max": max(values)}
    out |= {f"p{q}": v for q, v in zip(PERCENTILES, pcts, strict=True)}
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
