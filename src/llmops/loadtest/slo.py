"""Service-level objectives: a YAML list of bounds on summary figures, evaluated after a run.

Format (``loadtests/slo/*.yaml``)::

    slos:
      - metric: ttft        # ttft | tpot | itl | e2el (milliseconds)
        stat: p95           # mean | median | p50 | p90 | p95 | p99 | max
        max: 500
      - metric: error_ratio # or any other summary key, e.g. request_throughput
        max: 0.01
      - metric: request_throughput
        min: 2

A breach names the SLO and by how much it broke; ``llmops loadtest`` exits 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.errors import LlmopsError
from llmops.loadtest.stats import LATENCY_METRICS, PERCENTILES

STATS = ("mean", "median", "min", "max", "std", *(f"p{q}" for q in PERCENTILES))


@dataclass(frozen=True)
class Slo:
    metric: str
    stat: str | None
    max: float | None
    min: float | None

    @property
    def key(self) -> str:
        """The summary key this SLO reads (``p95_ttft_ms`` or ``error_ratio``)."""
        return f"{self.stat}_{self.metric}_ms" if self.metric in LATENCY_METRICS else self.metric

    @property
    def label(self) -> str:
        return f"{self.metric} {self.stat}" if self.stat else self.metric

    @property
    def unit(self) -> str:
        return " ms" if self.metric in LATENCY_METRICS else ""


@dataclass(frozen=True)
class SloResult:
    slo: Slo
    observed: float
    ok: bool
    message: str


def parse(data: Any, source: str = "<slo>") -> list[Slo]:
    """Validate the SLO document; every problem is reported at once with its path."""
    if not isinstance(data, Mapping) or not isinstance(data.get("slos"), list):
        raise LlmopsError(f"{source}: expected a mapping with a `slos:` list")
    problems: list[str] = []
    slos: list[Slo] = []
    for i, raw in enumerate(data["slos"]):
        where = f"{source}: slos[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a mapping")
            continue
        unknown = set(raw) - {"metric", "stat", "max", "min"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        metric = raw.get("metric")
        stat = raw.get("stat")
        if not isinstance(metric, str) or not metric:
            problems.append(f"{where}.metric: required (one of {', '.join(LATENCY_METRICS)} or a summary key)")
            continue
        if metric in LATENCY_METRICS:
            if stat not in STATS:
                problems.append(f"{where}.stat: {stat!r} is not one of {', '.join(STATS)}")
        elif stat is not None:
            problems.append(f"{where}.stat: only latency metrics ({', '.join(LATENCY_METRICS)}) take a stat")
        bounds = {k: raw.get(k) for k in ("max", "min")}
        if all(v is None for v in bounds.values()):
            problems.append(f"{where}: needs `max:` or `min:`")
        for k, v in bounds.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                problems.append(f"{where}.{k}: {v!r} is not a number")
        slos.append(Slo(metric, stat, raw.get("max"), raw.get("min")))
    if problems:
        raise LlmopsError("invalid SLO file:\n  " + "\n  ".join(problems))
    return slos


def load(path: str | Path) -> list[Slo]:
    p = Path(path)
    if not p.is_file():
        raise LlmopsError(f"SLO file {p} does not exist; see loadtests/slo/ for examples")
    return parse(yaml.safe_load(p.read_text()), str(p))


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}"


def evaluate(slos: list[Slo], summary: Mapping[str, Any]) -> list[SloResult]:
    results: list[SloResult] = []
    for slo in slos:
        if slo.key not in summary:
            raise LlmopsError(f"SLO {slo.label}: the summary has no `{slo.key}`; known keys: {', '.join(sorted(summary))}")
        observed = float(summary[slo.key])
        u = slo.unit
        if math.isnan(observed):
            results.append(SloResult(slo, observed, False, f"{slo.label}: no samples (every request failed?)"))
            continue
        if slo.max is not None and observed > slo.max:
            over = observed - slo.max
            rel = f", {over / slo.max:.1%}" if slo.max else ""
            msg = f"{slo.label} = {_fmt(observed)}{u} > max {_fmt(slo.max)}{u} (breached by {_fmt(over)}{u}{rel})"
            results.append(SloResult(slo, observed, False, msg))
        elif slo.min is not None and observed < slo.min:
            under = slo.min - observed
            rel = f", {under / slo.min:.1%}" if slo.min else ""
            msg = f"{slo.label} = {_fmt(observed)}{u} < min {_fmt(slo.min)}{u} (short by {_fmt(under)}{u}{rel})"
            results.append(SloResult(slo, observed, False, msg))
        else:
            bound = f"<= {_fmt(slo.max)}" if slo.max is not None else f">= {_fmt(slo.min or 0)}"
            results.append(SloResult(slo, observed, True, f"{slo.label} = {_fmt(observed)}{u} {bound}{u}"))
    return results
