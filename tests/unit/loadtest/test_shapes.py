"""Load shapes: durations, stages, open-loop arrival schedules."""

from __future__ import annotations

import statistics

import pytest

from llmops.errors import LlmopsError
from llmops.loadtest import shapes


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("500ms", 0.5), ("1h30m", 5400), (12, 12), ("7.5", 7.5)])
def test_parse_duration_accepts_go_style_and_plain_seconds(text: object, seconds: float) -> None:
    assert shapes.parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(LlmopsError, match="Go-style"):
        shapes.parse_duration("ten seconds")


def test_fixed_concurrency_holds_users_until_duration_then_ends() -> None:
    shape = shapes.build({"shape": "concurrency", "users": 8, "duration": "20s"})
    assert not shape.open_loop
    assert shape.value_at(0) == 8 and shape.value_at(19.9) == 8
    assert shape.value_at(20) is None


def test_step_ramp_changes_users_at_each_boundary() -> None:
    shape = shapes.build({"shape": "step", "stages": [{"users": 2, "duration": "10s"}, {"users": 6, "duration": "5s"}]})
    assert [shape.value_at(t) for t in (0, 9.9, 10, 14.9, 15)] == [2, 2, 6, 6, None]


def test_spike_rises_to_peak_for_its_length_and_falls_back() -> None:
    shape = shapes.build({"shape": "spike", "base": 2, "peak": 20, "at": "10s", "length": "5s", "duration": "30s"})
    assert [shape.value_at(t) for t in (5, 10, 14.9, 15, 29.9)] == [2, 20, 20, 2, 2]
    assert shape.peak_users == 20


def test_spike_that_outlasts_the_run_is_rejected() -> None:
    with pytest.raises(LlmopsError, match="ends after the duration"):
        shapes.build({"shape": "spike", "peak": 5, "at": "25s", "length": "10s", "duration": "30s"})


def test_constant_rate_arrivals_are_evenly_spaced() -> None:
    shape = shapes.build({"shape": "constant", "rate": 4, "duration": "10s"})
    arrivals = list(shape.arrivals())
    assert shape.open_loop and len(arrivals) == 40  # 0, 0.25, ..., 9.75: rate x duration requests
    assert all(b - a == pytest.approx(0.25) for a, b in zip(arrivals, arrivals[1:], strict=False))


def test_poisson_arrivals_have_the_configured_mean_rate_and_exponential_spread() -> None:
    shape = shapes.build({"shape": "poisson", "rate": 50, "duration": "200s"})
    arrivals = list(shape.arrivals(seed=7))
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) / 200 == pytest.approx(50, rel=0.03)
    # exponential: standard deviation equals the mean (coefficient of variation 1)
    assert statistics.pstdev(gaps) / statistics.mean(gaps) == pytest.approx(1.0, abs=0.05)


def test_step_in_rate_units_is_open_loop_with_rate_changes() -> None:
    shape = shapes.build({"shape": "step", "stages": [{"rate": 2, "duration": "5s"}, {"rate": 10, "duration": "5s"}]})
    arrivals = list(shape.arrivals())
    assert shape.open_loop
    assert sum(1 for a in arrivals if a < 5) == 10 and sum(1 for a in arrivals if a >= 5) == 50


def test_shape_round_trips_through_its_dict_form() -> None:
    shape = shapes.build({"shape": "poisson", "rate": 3, "duration": "5s", "max_concurrency": 9})
    assert shapes.Shape.from_dict(shape.to_dict()) == shape


def test_sweep_spaces_rates_up_to_the_measured_max() -> None:
    assert shapes.sweep_rates(10.0, 4) == [2.5, 5.0, 7.5, 10.0]
    shape = shapes.build({"shape": "sweep", "steps": 4, "step_duration": "5s"})
    assert shape.sweep == {"step_duration": 5.0, "poisson": False, "steps": 4}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"shape": "wave"}, "is not one of"),
        ({"shape": "concurrency"}, "needs `users`"),
        ({"shape": "constant", "rate": -1}, "must be > 0"),
        ({"shape": "step", "stages": []}, "needs a list"),
        ({"shape": "sweep", "steps": 1}, "at least 2 steps"),
    ],
)
def test_invalid_shapes_say_what_is_wrong(spec: dict, message: str) -> None:
    with pytest.raises(LlmopsError, match=message):
        shapes.build(spec)
