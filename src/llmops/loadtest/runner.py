"""Run the locustfile headless in a subprocess and collect its raw samples.

Locust monkey-patches the whole interpreter with gevent, so it never runs
inside the harness (or pytest) process: each run is ``python -m locust`` with
``loadtests/locustfile.py`` and a JSON config, its live progress lines pass
through, and the raw samples come back as JSON lines for exact statistics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmops import paths
from llmops.errors import LlmopsError
from llmops.loadtest import shapes, stats
from llmops.loadtest.profiles import Profile

_PROGRESS_RE = re.compile(r"^\[\s*\d+s\] ")  # the locustfile's live progress lines
LOCUSTFILE = paths.REPO_ROOT / "loadtests" / "locustfile.py"
# Beyond the shape's own duration: Locust start-up and spawning, before we call it hung.
STARTUP_GRACE_S = 60.0
# After the duration no request starts; in-flight ones get this long to finish (the locustfile's drain).
DRAIN_TIMEOUT_S = 30.0


@dataclass
class RunSpec:
    profile_data: Mapping[str, Any]
    profile: Profile
    targets: Mapping[str, list[str]]
    shape: shapes.Shape
    out_dir: Path
    api_key: str = ""
    insecure: bool = False
    seed: int | None = 1
    progress_interval: float = 5.0
    request_timeout: float = 600.0
    label: str = "run"
    # After the duration no request starts; in-flight ones get this long to finish (0: cut them off).
    drain_timeout: float = DRAIN_TIMEOUT_S


@dataclass
class RunResult:
    spec: RunSpec
    samples: list[stats.Sample]
    wall_s: float
    html: Path
    lags_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = stats.summarize(self.samples)
        out["offered_concurrency"] = self.spec.shape.peak_users if not self.spec.shape.open_loop else None
        out["offered_rate"] = self.spec.shape.stages[0].value if self.spec.shape.open_loop else None
        out["arrival_lag_p99_ms"] = stats.percentile(self.lags_ms, 99) if self.lags_ms else 0.0
        # Little's law: mean requests in flight = throughput x mean latency.
        e2el = out.get("mean_e2el_ms")
        out["mean_concurrency"] = out["request_throughput"] * e2el / 1000 if e2el == e2el else 0.0  # NaN-safe
        return out


def run(spec: RunSpec, *, quiet: bool = False) -> RunResult:
    if not spec.targets:
        raise LlmopsError("no target endpoints: give --url, or --release with endpoints registered for it")
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    samples_path = spec.out_dir / f"{spec.label}-samples.jsonl"
    config_path = spec.out_dir / f"{spec.label}-config.json"
    html = spec.out_dir / f"{spec.label}-locust.html"
    config = {
        "profile": dict(spec.profile_data),
        "targets": {m: list(u) for m, u in spec.targets.items()},
        "shape": spec.shape.to_dict(),
        "samples": str(samples_path),
        "api_key": spec.api_key,
        "insecure": spec.insecure,
        "seed": spec.seed,
        "progress_interval": 0 if quiet else spec.progress_interval,
        "request_timeout": spec.request_timeout,
        "drain_timeout": spec.drain_timeout,
    }
    config_path.write_text(json.dumps(config, indent=2))
    first_url = next(iter(next(iter(spec.targets.values()))))
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless", "--only-summary",
        "--host", first_url,
        "--html", str(html),
        "--loglevel", "WARNING",
        "--exit-code-on-error", "0",  # SLOs, not Locust, decide pass/fail
    ]  # fmt: skip
    env = dict(os.environ)
    env["LLMOPS_LOADTEST_CONFIG"] = str(config_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.REPO_ROOT / "src"), env.get("PYTHONPATH", "")]))
    timeout = spec.shape.duration + spec.drain_timeout + STARTUP_GRACE_S
    started = time.monotonic()
    log_path = spec.out_dir / f"{spec.label}-locust.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        # A watchdog, not a check between lines: a hung Locust may print nothing at all.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            for line in proc.stdout:
                log.write(line)
                if not quiet and _PROGRESS_RE.match(line):
                    print(f"  {line.rstrip()}", flush=True)
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:  # interrupted while reading
                proc.kill()
                proc.wait()
        if time.monotonic() - started >= timeout:
            raise LlmopsError(f"locust did not finish within {timeout:.0f}s (waiting for the run to end); see {log_path}")
    wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-20:])
        raise LlmopsError(f"locust exited {proc.returncode}; log {log_path}:\n{tail}")
    samples: list[stats.Sample] = []
    lags: list[float] = []
    if samples_path.exists():
        for line in samples_path.read_text().splitlines():
            if line.strip():
                raw = json.loads(line)
                lags.append(float(raw.get("lag_ms", 0.0)))
                samples.append(stats.Sample.from_dict(raw))
    return RunResult(spec, samples, wall, html, lags)


def sweep(spec: RunSpec, *, quiet: bool = False) -> tuple[list[RunResult], float]:
    """GuideLLM-style sweep: a saturating run measures the max rate, then constant-rate runs up to it.

    Returns the per-rate runs (ascending) and the measured max rate.
    """
    cfg = spec.shape.sweep
    step = float(cfg["step_duration"])
    results: list[RunResult] = []
    rates = list(cfg.get("rates") or [])
    max_rate = max(rates) if rates else 0.0
    if not rates:
        saturate = shapes.Shape("concurrency", False, (shapes.Stage(step, float(spec.shape.max_concurrency)),))
        if not quiet:
            print(f"  sweep: saturating run at concurrency {spec.shape.max_concurrency} for {step:g}s", flush=True)
        first = run(replace(spec, shape=saturate, label=f"{spec.label}-max"), quiet=quiet)
        max_rate = first.summary()["request_throughput"]
        if not max_rate or max_rate != max_rate:
            raise LlmopsError("sweep: the saturating run completed no request; is the endpoint up?")
        rates = shapes.sweep_rates(max_rate, int(cfg["steps"]))
    for i, rate in enumerate(rates):
        shape = shapes.Shape(
            "poisson" if cfg.get("poisson") else "constant",
            True,
            (shapes.Stage(step, rate),),
            poisson=bool(cfg.get("poisson")),
            max_concurrency=spec.shape.max_concurrency,
        )
        if not quiet:
            print(f"  sweep: step {i + 1}/{len(rates)} at {rate:.2f} req/s for {step:g}s", flush=True)
        results.append(run(replace(spec, shape=shape, label=f"{spec.label}-rate{i + 1:02d}"), quiet=quiet))
    return results, max_rate
