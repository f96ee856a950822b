"""Scale-out figures from a recorded timeline: decision, ready, scale-in, oscillation."""

from __future__ import annotations

from pathlib import Path

from llmops.autoscale.scenarios import analyze, plot, reversals
from llmops.autoscale.stack import Sample


def _s(t: float, desired: int, ready: int, queue: float = 0.0) -> Sample:
    return Sample(t, "m", queue, 0.0, 0, 0, desired, desired, ready, ready)


def test_reversals_counts_direction_changes_not_plateaus() -> None:
    assert reversals([1, 2, 2, 3, 4, 4]) == 0
    assert reversals([1, 3, 2, 3]) == 2
    assert reversals([4, 4, 1]) == 0


def test_analyze_measures_from_spike_start_to_decision_and_to_all_replicas_ready() -> None:
    timeline = [_s(0, 1, 1), _s(10, 1, 1, 12), _s(20, 3, 1, 20), _s(22, 3, 2, 15), _s(25, 4, 3, 9),
                _s(30, 4, 4, 6), _s(40, 4, 4, 6), _s(50, 4, 4, 0), _s(75, 1, 1, 0)]  # fmt: skip
    f = analyze(timeline, spike_at=10, spike_end=45)
    assert (f.decision_s, f.first_ready_s, f.ready_s) == (10, 12, 20)
    assert f.max_desired == 4 and f.start_replicas == 1
    assert f.scale_in_s == 30  # back at 1 replica 30 s after the load ended
    assert f.peak_queue == 20 and f.queue_at_end_of_spike == 6
    assert f.reversals_during_spike == 0


def test_analyze_reports_no_decision_when_replicas_never_grow() -> None:
    f = analyze([_s(0, 2, 2), _s(10, 2, 2, 30), _s(20, 2, 2, 30)], spike_at=5, spike_end=20)
    assert f.decision_s is None and f.ready_s is None and f.scale_in_s is None


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = plot(tmp_path / "a.png", [("run", [_s(0, 1, 1), _s(5, 2, 1, 7), _s(9, 2, 2, 1)], 2, 8)], "t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
