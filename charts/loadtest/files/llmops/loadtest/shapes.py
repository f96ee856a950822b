"""Load shapes: how many clients (closed loop) or which arrival rate (open loop) over time.

The ``load:`` block of a profile, or the CLI flags, pick one::

    {shape: concurrency, users: 8, duration: 30s}          # fixed concurrency (closed loop)
    {shape: constant, rate: 10, duration: 30s}             # open loop, evenly spaced arrivals (req/s)
    {shape: poisson, rate: 10, duration: 30s}              # open loop, exponential inter-arrival times
    {shape: step, stages: [{users: 2, duration: 10s}, {users: 8, duration: 10s}]}  # or `rate:` per stage
    {shape: spike, base: 2, peak: 16, at: 10s, length: 5s, duration: 30s}          # `unit: rate` for req/s
    {shape: sweep, rates: [2, 4, 8], step_duration: 10s}   # or `steps: N` up to the measured max

Open-loop shapes keep at most ``max_concurrency`` requests in flight (default
512); arrivals that find every client busy start late, and the lag is
reported (``arrival_lag_p99_ms``) so an overloaded generator is visible.

Requests start only within ``duration``; afterwards the run waits for the
in-flight ones to finish for at most ``drain`` (default 30s; ``0`` cuts them
off), so every offered request is measured.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.errors import LlmopsError

SHAPES = ("concurrency", "constant", "poisson", "step", "spike", "sweep")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration (``500ms``, ``30s``, ``2m``, ``1h30m``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        raise LlmopsError("empty duration; use e.g. 30s, 2m, 500ms")
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        try:
            return float(text)
        except ValueError:
            raise LlmopsError(f"duration {value!r} is not a number of seconds or Go-style (30s, 2m, 500ms)") from None
    return total


@dataclass(frozen=True)
class Stage:
    until: float  # seconds from the start when this stage ends
    value: float  # users (closed loop) or req/s (open loop)


@dataclass(frozen=True)
class Shape:
    """A resolved shape: piecewise-constant users or rate over ``duration`` seconds."""

    kind: str
    open_loop: bool
    stages: tuple[Stage, ...]
    poisson: bool = False
    max_concurrency: int = 512
    sweep: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.stages[-1].until if self.stages else 0.0

    def value_at(self, t: float) -> float | None:
        """Users or rate at second ``t``; None once the shape is over."""
        for stage in self.stages:
            if t < stage.until:
                return stage.value
        return None

    @property
    def peak_users(self) -> int:
        if self.open_loop:
            return self.max_concurrency
        return int(max(s.value for s in self.stages))

    def arrivals(self, seed: int | None = None) -> Iterator[float]:
        """Open loop: request start offsets (seconds) following the piecewise rate, until the end.

        Evenly spaced arrivals sit at ``stage_start + k / rate`` (k = 0, 1, ...), so a
        stage of R req/s lasting D seconds offers exactly R x D requests; Poisson
        arrivals draw exponential gaps at the current stage's rate.
        """
        rng = random.Random(seed)
        start = 0.0
        t = 0.0
        for stage in self.stages:
            if stage.value <= 0:
                start = t = stage.until
                continue
            if self.poisson:
                while True:
                    t += rng.expovariate(stage.value)
                    if t >= stage.until:
                        t = stage.until
                        break
                    yield t
            else:
                k = 0
                while (at := start + k / stage.value) < stage.until - 1e-9:
                    yield at
                    k += 1
            start = t = stage.until

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "open_loop": self.open_loop,
            "poisson": self.poisson,
            "max_concurrency": self.max_concurrency,
            "stages": [[s.until, s.value] for s in self.stages],
            "sweep": dict(self.sweep),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shape:
        return cls(
            kind=data["kind"],
            open_loop=bool(data["open_loop"]),
            poisson=bool(data.get("poisson", False)),
            max_concurrency=int(data.get("max_concurrency", 512)),
            stages=tuple(Stage(float(u), float(v)) for u, v in data["stages"]),
            sweep=dict(data.get("sweep", {})),
        )


def _positive(spec: Mapping[str, Any], key: str, default: Any = None) -> float:
    value = spec.get(key, default)
    if value is None:
        raise LlmopsError(f"load shape {spec.get('shape')!r} needs `{key}`")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LlmopsError(f"load.{key}: {value!r} is not a number") from None
    if number <= 0:
        raise LlmopsError(f"load.{key}: must be > 0, got {value!r}")
    return number


def build(spec: Mapping[str, Any]) -> Shape:
    """Resolve a ``load:`` mapping (profile merged with CLI overrides) into a :class:`Shape`."""
    kind = spec.get("shape", "concurrency")
    if kind not in SHAPES:
        raise LlmopsError(f"load.shape: {kind!r} is not one of {', '.join(SHAPES)}")
    max_conc = int(spec.get("max_concurrency", 512))
    duration = parse_duration(spec.get("duration", "30s"))
    if kind == "concurrency":
        return Shape(kind, False, (Stage(duration, _positive(spec, "users")),))
    if kind in ("constant", "poisson"):
        rate = _positive(spec, "rate")
        return Shape(kind, True, (Stage(duration, rate),), poisson=kind == "poisson", max_concurrency=max_conc)
    if kind == "step":
        raw = spec.get("stages")
        if not isinstance(raw, list) or not raw:
            raise LlmopsError("load.stages: the step shape needs a list of {users|rate, duration}")
        open_loop = "rate" in raw[0]
        key = "rate" if open_loop else "users"
        stages: list[Stage] = []
        t = 0.0
        for i, stage in enumerate(raw):
            if not isinstance(stage, Mapping) or key not in stage:
                raise LlmopsError(f"load.stages[{i}]: needs `{key}` (every stage uses the same unit) and `duration`")
            t += parse_duration(stage.get("duration", "10s"))
            stages.append(Stage(t, float(stage[key])))
        return Shape(kind, open_loop, tuple(stages), poisson=bool(spec.get("poisson", False)), max_concurrency=max_conc)
    if kind == "spike":
        open_loop = spec.get("unit", "users") == "rate"
        base = float(spec.get("base", 1))
        peak = _positive(spec, "peak")
        at = parse_duration(spec.get("at", duration / 3))
        length = parse_duration(spec.get("length", duration / 3))
        if at + length > duration:
            raise LlmopsError(f"load: spike at {at}s lasting {length}s ends after the duration {duration}s")
        stages_ = [Stage(at, base), Stage(at + length, peak), Stage(duration, base)]
        stages_ = [s for i, s in enumerate(stages_) if s.until > (stages_[i - 1].until if i else 0)]
        return Shape(kind, open_loop, tuple(stages_), poisson=bool(spec.get("poisson", False)), max_concurrency=max_conc)
    # sweep: each point is its own short constant-rate run; the runner drives it.
    step = parse_duration(spec.get("step_duration", "10s"))
    rates = spec.get("rates")
    sweep: dict[str, Any] = {"step_duration": step, "poisson": bool(spec.get("poisson", False))}
    if rates is not None:
        if not isinstance(rates, list) or not rates or any(float(r) <= 0 for r in rates):
            raise LlmopsError("load.rates: a non-empty list of positive req/s values")
        sweep["rates"] = sorted(float(r) for r in rates)
    else:
        sweep["steps"] = int(spec.get("steps", 5))
        if sweep["steps"] < 2:
            raise LlmopsError("load.steps: a sweep needs at least 2 steps")
    n = len(sweep.get("rates", [])) or sweep["steps"]
    return Shape(kind, True, (Stage(step * n, 0.0),), max_concurrency=max_conc, sweep=sweep)


def sweep_rates(max_rate: float, steps: int) -> list[float]:
    """Evenly spaced rates from max/steps up to the measured max (GuideLLM's sweep does likewise)."""
    return [max_rate * (i + 1) / steps for i in range(steps)]
