"""Workload profiles: what each simulated client sends.

A profile is YAML (``loadtests/profiles/*.yaml``)::

    name: chat-short
    api: {chat: 0.8, completions: 0.2}  # or just `chat` / `completions`
    stream: 1.0                        # fraction of streamed requests (true/false allowed)
    prompt_tokens: {dist: normal, mean: 128, std: 32, min: 8, max: 512}
    output_tokens: {dist: uniform, min: 16, max: 64}
    shared_prefix: {ratio: 0.5, tokens: 64}  # share of requests that start with one common prefix
    multi_turn: {turns: 3}             # chat turns per conversation (history grows)
    models: {"*": 1}                   # weights per served model name; "*" = each model alike
    load: {shape: concurrency, users: 4, duration: 30s}   # see llmops.loadtest.shapes

Distributions (``dist``): ``fixed`` (value), ``uniform`` (min, max),
``normal`` (mean, std, min, max) and ``lognormal`` (mean, sigma, min, max; mean
is the median in tokens). A plain number means ``fixed``.
Prompts are words from a small vocabulary: one word is one token for the
simulator's tokenizer and one to two for real BPE tokenizers; the usage
block of each response reports the real counts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import LlmopsError

APIS = ("chat", "completions")
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
_WORDS = (
    "cluster node pod replica token latency queue batch cache prefix model engine request stream "
    "throughput gateway metric scale budget window shard kernel memory tensor layer head vector "
    "prompt answer system user query route policy health probe deploy rollout canary signal"
).split()


@dataclass(frozen=True)
class Distribution:
    dist: str
    params: Mapping[str, float]

    def sample(self, rng: random.Random) -> int:
        p = self.params
        if self.dist == "fixed":
            value = p["value"]
        elif self.dist == "uniform":
            value = rng.uniform(p["min"], p["max"])
        elif self.dist == "normal":
            value = rng.gauss(p["mean"], p.get("std", 0))
        elif self.dist == "lognormal":
            value = rng.lognormvariate(math.log(p["mean"]), p.get("sigma", 0.5))
        else:  # parse() rejects anything else
            raise AssertionError(self.dist)
        lo = p.get("min", 1)
        hi = p.get("max", math.inf)
        return int(round(min(max(value, lo, 1), hi)))

    @property
    def mean(self) -> float:
        p = self.params
        if self.dist == "fixed":
            return float(p["value"])
        if self.dist == "uniform":
            return (p["min"] + p["max"]) / 2
        return float(p["mean"])


_DIST_PARAMS = {
    "fixed": ({"value"}, set()),
    "uniform": ({"min", "max"}, set()),
    "normal": ({"mean"}, {"std", "min", "max"}),
    "lognormal": ({"mean"}, {"sigma", "min", "max"}),
}


def parse_distribution(raw: Any, where: str, problems: list[str]) -> Distribution:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Distribution("fixed", {"value": float(raw)})
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a number or a mapping with `dist:`")
        return Distribution("fixed", {"value": 1.0})
    kind = raw.get("dist", "fixed")
    if kind not in _DIST_PARAMS:
        problems.append(f"{where}.dist: {kind!r} is not one of {', '.join(_DIST_PARAMS)}")
        return Distribution("fixed", {"value": 1.0})
    required, optional = _DIST_PARAMS[kind]
    params = {k: v for k, v in raw.items() if k != "dist"}
    missing = required - set(params)
    extra = set(params) - required - optional
    if missing:
        problems.append(f"{where}: dist {kind} needs {', '.join(sorted(missing))}")
    if extra:
        problems.append(f"{where}: dist {kind} does not take {', '.join(sorted(extra))}")
    bad = [k for k, v in params.items() if isinstance(v, bool) or not isinstance(v, int | float) or v < 0]
    if bad:
        problems.append(f"{where}: {', '.join(sorted(bad))} must be non-negative numbers")
    if missing or bad:
        return Distribution("fixed", {"value": 1.0})
    if kind == "uniform" and params["min"] > params["max"]:
        problems.append(f"{where}: min {params['min']} > max {params['max']}")
    return Distribution(kind, {k: float(v) for k, v in params.items()})


@dataclass(frozen=True)
class Profile:
    name: str
    api_weights: Mapping[str, float]
    stream_ratio: float
    prompt_tokens: Distribution
    output_tokens: Distribution
    prefix_ratio: float = 0.0
    prefix_tokens: int = 0
    turns: int = 1
    model_weights: Mapping[str, float] = field(default_factory=lambda: {"*": 1.0})
    load: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def models_for(self, served: Sequence[str]) -> dict[str, float]:
        """Weights over the target's served model names (``*`` spreads its weight over the rest equally)."""
        weights: dict[str, float] = {}
        named = {m for m in self.model_weights if m != "*"}
        unknown = sorted(named - set(served))
        if unknown:
            raise LlmopsError(
                f"profile {self.name}: model(s) {', '.join(unknown)} are not served by the target "
                f"(it serves {', '.join(served) or 'nothing'})"
            )
        for model in named:
            weights[model] = float(self.model_weights[model])
        star = float(self.model_weights.get("*", 0))
        rest = [m for m in served if m not in named]
        for model in rest:
            weights[model] = star / len(rest) if star else 0.0
        weights = {m: w for m, w in weights.items() if w > 0}
        if not weights:
            raise LlmopsError(f"profile {self.name}: no served model has a positive weight")
        return weights


def parse(data: Any, source: str = "<profile>") -> Profile:
    if not isinstance(data, Mapping):
        raise LlmopsError(f"{source}: expected a mapping")
    problems: list[str] = []
    known = {
        "name", "description", "api", "stream", "prompt_tokens", "output_tokens",
        "shared_prefix", "multi_turn", "models", "load",
    }  # fmt: skip
    unknown = set(data) - known
    if unknown:
        problems.append(f"{source}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    api = data.get("api", "chat")
    api_weights: dict[str, float] = {api: 1.0} if isinstance(api, str) else dict(api or {})
    if not api_weights or set(api_weights) - set(APIS) or sum(api_weights.values()) <= 0:
        problems.append(f"{source}: api: {api!r} must be one of {APIS} or a mapping of them to weights")
    stream = data.get("stream", True)
    ratio = float(stream) if isinstance(stream, bool | int | float) else -1.0
    if not 0 <= ratio <= 1:
        problems.append(f"{source}: stream: {stream!r} must be true/false or a fraction 0..1")
    prompt = parse_distribution(data.get("prompt_tokens", 128), f"{source}: prompt_tokens", problems)
    output = parse_distribution(data.get("output_tokens", 64), f"{source}: output_tokens", problems)
    prefix = data.get("shared_prefix") or {}
    prefix_ratio = float(prefix.get("ratio", 0)) if isinstance(prefix, Mapping) else -1
    prefix_tokens = int(prefix.get("tokens", 0)) if isinstance(prefix, Mapping) else 0
    if not 0 <= prefix_ratio <= 1 or prefix_tokens < 0 or (prefix_ratio > 0 and prefix_tokens == 0):
        problems.append(f"{source}: shared_prefix needs ratio in 0..1 and tokens > 0, got {prefix!r}")
    multi = data.get("multi_turn") or {}
    turns = int(multi.get("turns", 1)) if isinstance(multi, Mapping) else 0
    if turns < 1:
        problems.append(f"{source}: multi_turn.turns must be >= 1, got {multi!r}")
    models = data.get("models", {"*": 1})
    if not isinstance(models, Mapping) or any(
        isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in models.values()
    ):
        problems.append(f"{source}: models must map model names (or '*') to non-negative weights")
        models = {"*": 1}
    load = data.get("load") or {}
    if not isinstance(load, Mapping):
        problems.append(f"{source}: load must be a mapping")
        load = {}
    if problems:
        raise LlmopsError("invalid profile:\n  " + "\n  ".join(problems))
    return Profile(
        name=str(data.get("name", Path(source).stem)),
        description=str(data.get("description", "")),
        api_weights=api_weights,
        stream_ratio=ratio,
        prompt_tokens=prompt,
        output_tokens=output,
        prefix_ratio=prefix_ratio,
        prefix_tokens=prefix_tokens,
        turns=turns,
        model_weights={str(k): float(v) for k, v in models.items()},
        load=dict(load),
    )


def load(path: str | Path) -> Profile:
    import yaml  # lazily: the in-cluster locustfile gets profiles as JSON and has no PyYAML

    p = Path(path)
    if not p.is_file():
        raise LlmopsError(f"profile {p} does not exist; see loadtests/profiles/ for examples")
    return parse(yaml.safe_load(p.read_text()), str(p))


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


@dataclass
class Conversation:
    """State of one simulated client: its chat history across turns."""

    model: str
    api: str
    stream: bool
    turns_left: int
    messages: list[dict[str, str]] = field(default_factory=list)


class RequestFactory:
    """Draws request bodies from a profile; one instance per simulated client (holds its conversation)."""

    def __init__(self, profile: Profile, served: Sequence[str], seed: int | None = None) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        weights = profile.models_for(served)
        self._models = list(weights)
        self._model_w = list(weights.values())
        self._apis = list(profile.api_weights)
        self._api_w = list(profile.api_weights.values())
        # One prefix for the whole run (same seed -> same prefix in every worker).
        self.prefix = words(random.Random(0x11F), profile.prefix_tokens) if profile.prefix_tokens else ""
        self.conversation: Conversation | None = None

    def _new_conversation(self) -> Conversation:
        api = self.rng.choices(self._apis, self._api_w)[0]
        return Conversation(
            model=self.rng.choices(self._models, self._model_w)[0],
            api=api,
            stream=self.rng.random() < self.profile.stream_ratio,
            turns_left=self.profile.turns if api == "chat" else 1,
        )

    def next(self) -> tuple[Conversation, str, dict[str, Any]]:
        """(conversation, path, JSON body) of the next request this client sends."""
        conv = self.conversation
        if conv is None or conv.turns_left <= 0:
            conv = self.conversation = self._new_conversation()
        conv.turns_left -= 1
        n_prompt = self.profile.prompt_tokens.sample(self.rng)
        n_out = self.profile.output_tokens.sample(self.rng)
        text = words(self.rng, n_prompt)
        if not conv.messages and self.prefix and self.rng.random() < self.profile.prefix_ratio:
            text = f"{self.prefix} {text}"
        body: dict[str, Any] = {
            "model": conv.model,
            "max_tokens": n_out,
            "ignore_eos": True,  # vLLM and the simulator then emit exactly max_tokens
            "stream": conv.stream,
        }
        if conv.stream:
            body["stream_options"] = {"include_usage": True}
        if conv.api == "chat":
            conv.messages.append({"role": "user", "content": text})
            body["messages"] = list(conv.messages)
        else:
            body["prompt"] = text
        return conv, PATHS[conv.api], body

    def record_answer(self, conv: Conversation, answer: str) -> None:
        """Append the assistant's answer so the next turn carries the history (multi-turn)."""
        if conv.api == "chat" and conv.turns_left > 0:
            conv.messages.append({"role": "assistant", "content": answer})
        elif conv.turns_left <= 0:
            conv.messages.clear()
