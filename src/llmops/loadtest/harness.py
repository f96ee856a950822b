"""One load test end to end: profile + shape + targets -> Locust run(s) -> summary, SLO verdict, reports."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import paths
from llmops.errors import LlmopsError
from llmops.loadtest import profiles, report, runner, shapes, slo, stats

LOADTESTS_DIR = paths.REPO_ROOT / "loadtests"
DEFAULT_PROFILE = LOADTESTS_DIR / "profiles" / "default.yaml"
DEFAULT_SLO = LOADTESTS_DIR / "slo" / "default.yaml"


class SloBreach(LlmopsError):
    """At least one SLO broke: exit code 1 (a finding, not a usage error)."""

    exit_code = 1


@dataclass
class Outcome:
    report_dir: Path
    summary: dict[str, Any]
    slo_results: list[slo.SloResult]
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.slo_results)

    def breaches(self) -> list[str]:
        return [r.message for r in self.slo_results if not r.ok]


def resolve_profile(ref: str | Path) -> Path:
    """A profile path, or the name of one in loadtests/profiles/."""
    p = Path(ref)
    if p.is_file():
        return p
    named = LOADTESTS_DIR / "profiles" / f"{ref}.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(x.stem for x in (LOADTESTS_DIR / "profiles").glob("*.yaml")))
    raise LlmopsError(f"profile {ref!r} is neither a file nor one of loadtests/profiles/ ({known})")


def resolve_slo(ref: str | Path | None) -> list[slo.Slo]:
    if ref is None or str(ref) == "none":
        return []
    p = Path(ref)
    if not p.is_file():
        named = LOADTESTS_DIR / "slo" / f"{ref}.yaml"
        if not named.is_file():
            raise LlmopsError(f"SLO {ref!r} is neither a file nor one of loadtests/slo/")
        p = named
    return slo.load(p)


def execute(
    *,
    targets: Mapping[str, list[str]],
    profile: str | Path = DEFAULT_PROFILE,
    slo_ref: str | Path | None = DEFAULT_SLO,
    load_overrides: Mapping[str, Any] | None = None,
    report_dir: Path | None = None,
    api_key: str = "",
    insecure: bool = False,
    seed: int | None = 1,
    quiet: bool = False,
    plots: bool = True,
    title: str = "Load test",
    context: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run the profile against the targets; write every report into ``report_dir``; never raises on a breach."""
    profile_path = resolve_profile(profile)
    profile_data = yaml.safe_load(profile_path.read_text())
    prof = profiles.parse(profile_data, str(profile_path))
    prof.models_for(list(targets))  # fail before starting Locust when a named model is not served
    load = {**prof.load, **{k: v for k, v in (load_overrides or {}).items() if v is not None}}
    shape = shapes.build(load)
    slos = resolve_slo(slo_ref)
    out = report_dir or paths.REPO_ROOT / "reports" / time.strftime("loadtest-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    spec = runner.RunSpec(
        profile_data=profile_data, profile=prof, targets=targets, shape=shape, out_dir=out,
        api_key=api_key, insecure=insecure, seed=seed, label="run",
        drain_timeout=shapes.parse_duration(load.get("drain", runner.DRAIN_TIMEOUT_S)),
    )  # fmt: skip
    if not quiet:
        desc = f"{shape.kind}, {shape.duration:g}s" if shape.kind != "sweep" else "sweep"
        where = ", ".join(f"{m} @ {' '.join(u)}" for m, u in targets.items())
        print(f"  load: profile {prof.name} ({desc}) -> {where}", flush=True)
    sweep_rows: list[dict[str, Any]] = []
    if shape.kind == "sweep":
        results, max_rate = runner.sweep(spec, quiet=quiet)
        for res in results:
            row = res.summary()
            row["slo_ok"] = all(r.ok for r in slo.evaluate(slos, row))
            sweep_rows.append(row)
        passing = [r for r in sweep_rows if r["slo_ok"]]
        best_index = sweep_rows.index(max(passing, key=lambda r: r["request_throughput"])) if passing else None
        chosen = results[best_index] if best_index is not None else results[0]
        summary = chosen.summary()
        summary["sweep_max_rate"] = max_rate
        summary["sweep_best_rate"] = sweep_rows[best_index]["offered_rate"] if best_index is not None else None
        samples = chosen.samples
        html = chosen.html
    else:
        result = runner.run(spec, quiet=quiet)
        summary = result.summary()
        samples = result.samples
        html = result.html
    slo_results = slo.evaluate(slos, summary)
    if shape.kind == "sweep" and summary.get("sweep_best_rate") is None:
        slo_results.append(
            slo.SloResult(slo.Slo("sweep", None, None, None), 0.0, False, "sweep: no rate met every SLO, not even the lowest")
        )
    plot_paths: list[Path] = []
    if plots:
        plot_paths.append(report.plot_latency_over_time(out / "latency_over_time.png", samples))
        plot_paths.append(report.plot_ttft_histogram(out / "ttft_histogram.png", samples))
        if sweep_rows:
            plot_paths.append(report.plot_sweep(out / "sweep_throughput.png", sweep_rows))
    ctx = {
        "profile": f"{prof.name} ({profile_path})",
        "shape": shape.kind,
        "targets": ", ".join(f"{m} -> {' '.join(u)}" for m, u in targets.items()),
        "Locust HTML": html.name,
        **(context or {}),
    }
    document = {
        "title": title,
        "context": ctx,
        "profile": profile_data,
        "load": {**shape.to_dict(), "duration_s": shape.duration},
        "summary": summary,
        "metric_names": {"source": "vllm bench serve", "guidellm": stats.GUIDELLM_NAMES},
        "slos": [{"slo": r.slo.label, "key": r.slo.key, "observed": r.observed, "ok": r.ok, "message": r.message}
                 for r in slo_results],  # fmt: skip
        "sweep": sweep_rows,
        "ok": all(r.ok for r in slo_results),
    }
    report.write_json(out / "summary.json", document)
    report.write_markdown(out / "summary.md", title, summary, slo_results, ctx, plot_paths, sweep_rows)
    lines = report.summary_lines(summary, slo_results)
    if sweep_rows:
        best = summary.get("sweep_best_rate")
        lines[:0] = [
            f"sweep: {len(sweep_rows)} rates up to {summary['sweep_max_rate']:.2f} req/s (measured max); "
            + (f"highest rate meeting every SLO: {best:.2f} req/s (figures below)" if best else "no rate met every SLO"),
            *(f"  offered {r['offered_rate']:.2f} req/s -> achieved {r['request_throughput']:.2f} req/s, "
              f"p95 TTFT {r['p95_ttft_ms']:.1f} ms, SLOs {'ok' if r['slo_ok'] else 'breached'}" for r in sweep_rows),
        ]  # fmt: skip
    return Outcome(out, summary, slo_results, lines)
