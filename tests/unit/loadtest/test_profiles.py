"""Workload profiles: validation, distributions, model mix, shared prefix, multi-turn."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

from llmops.errors import LlmopsError
from llmops.loadtest import profiles


def _profile(**data: object) -> profiles.Profile:
    return profiles.parse({"name": "t", **data})


def test_shipped_profiles_parse_and_build_a_shape(repo_root: Path) -> None:
    from llmops.loadtest import shapes

    files = sorted((repo_root / "loadtests" / "profiles").glob("*.yaml"))
    assert {f.stem for f in files} >= {"default", "chat-mixed", "spike", "step", "sweep", "multi-model"}
    for f in files:
        prof = profiles.load(f)
        shapes.build(prof.load)


def test_distributions_respect_mean_and_bounds() -> None:
    rng = random.Random(1)
    normal = profiles.parse_distribution({"dist": "normal", "mean": 100, "std": 10, "min": 90, "max": 130}, "x", [])
    values = [normal.sample(rng) for _ in range(5000)]
    assert min(values) >= 90 and max(values) <= 130
    uniform = profiles.parse_distribution({"dist": "uniform", "min": 10, "max": 20}, "x", [])
    u = [uniform.sample(rng) for _ in range(5000)]
    assert statistics.mean(u) == pytest.approx(15, abs=0.3) and set(u) <= set(range(10, 21))
    lognormal = profiles.parse_distribution({"dist": "lognormal", "mean": 64, "sigma": 0.5}, "x", [])
    assert statistics.median(lognormal.sample(rng) for _ in range(5000)) == pytest.approx(64, rel=0.05)
    assert profiles.parse_distribution(32, "x", []).sample(rng) == 32


def test_invalid_profile_lists_every_problem() -> None:
    with pytest.raises(LlmopsError) as err:
        profiles.parse({"api": "embeddings", "stream": 2, "prompt_tokens": {"dist": "zipf"},
                        "output_tokens": {"dist": "uniform", "min": 5}, "colour": "blue"}, "p.yaml")  # fmt: skip
    text = str(err.value)
    for fragment in ("unknown key(s) colour", "api: 'embeddings'", "stream: 2", "prompt_tokens.dist: 'zipf'",
                     "dist uniform needs max"):  # fmt: skip
        assert fragment in text


def test_model_mix_follows_weights_and_star_spreads_over_the_rest() -> None:
    prof = _profile(models={"chat": 3, "*": 1})
    assert prof.models_for(["chat", "a", "b"]) == {"chat": 3.0, "a": 0.5, "b": 0.5}
    factory = profiles.RequestFactory(_profile(models={"chat": 3, "coder": 1}), ["chat", "coder"], seed=5)
    seen = Counter()
    for _ in range(4000):
        factory.conversation = None
        conv, _, body = factory.next()
        seen[body["model"]] += 1
    assert seen["chat"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_profile_naming_an_unserved_model_fails_before_the_run() -> None:
    with pytest.raises(LlmopsError, match="coder are not served"):
        _profile(models={"coder": 1}).models_for(["chat"])


def test_streamed_requests_ask_for_usage_and_exact_output_length() -> None:
    factory = profiles.RequestFactory(_profile(stream=True, output_tokens=40), ["m"], seed=1)
    _, path, body = factory.next()
    assert path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 40 and body["ignore_eos"] is True


def test_completions_api_sends_a_prompt() -> None:
    factory = profiles.RequestFactory(_profile(api="completions", stream=False, prompt_tokens=12), ["m"], seed=1)
    _, path, body = factory.next()
    assert path == "/v1/completions" and len(body["prompt"].split()) == 12 and "stream_options" not in body


def test_shared_prefix_ratio_controls_how_many_conversations_share_the_prefix() -> None:
    factory = profiles.RequestFactory(_profile(shared_prefix={"ratio": 0.3, "tokens": 20}), ["m"], seed=2)
    hits = 0
    for _ in range(2000):
        factory.conversation = None
        _, _, body = factory.next()
        hits += body["messages"][0]["content"].startswith(factory.prefix)
    assert hits / 2000 == pytest.approx(0.3, abs=0.04)
    assert len(factory.prefix.split()) == 20


def test_multi_turn_carries_history_then_starts_a_new_conversation() -> None:
    factory = profiles.RequestFactory(_profile(multi_turn={"turns": 3}, stream=False), ["m"], seed=3)
    sizes = []
    for turn in range(4):
        conv, _, body = factory.next()
        sizes.append(len(body["messages"]))
        factory.record_answer(conv, f"answer {turn}")
    assert sizes == [1, 3, 5, 1]  # user; user+assistant+user; ...; then a fresh conversation
    assert [m["role"] for m in body["messages"]] == ["user"]
