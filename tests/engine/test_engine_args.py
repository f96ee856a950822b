"""Engine-argument conformance: the args the chart renders parse with vLLM 0.32.0's own parser.

For every environment file in values/ and every model served with
`engine: vllm`, the rendered engine container args go through
`vllm.entrypoints.launchers.cli_args.make_arg_parser` (plus the server's own
`validate_parsed_serve_args`) in the engine venv, and every typed value of the
model arrives at its option with its type (the expectation comes from the
values files, merged independently of the templates; see llmops.engine.engine_args).
All argument lists of the session are parsed in ONE interpreter (importing
vLLM costs seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmops import engine, environments, paths
from llmops.engine import engine_args
from llmops.validate import render

# One parser interpreter per session, on one xdist worker with the server.
pytestmark = pytest.mark.xdist_group("vllm-engine")
UMBRELLA = "llmops-stack"
ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
TYPO_VALUES = paths.VALUES_DIR / "local-vllm.yaml"


@dataclass(frozen=True)
class Case:
    env: Path
    values: dict[str, Any]
    index: int
    model: str
    argv: tuple[str, ...]


def _cases(env: Path, overlay: dict[str, Any] | None = None) -> list[Case]:
    layers = environments.test_layers([env])  # test-only digests over production placeholders
    values = engine_args.vllm_values(layers, overlay)
    if values.get("enabled") is False or values.get("engine") != "vllm":
        return []
    manifests = render.render(UMBRELLA, layers, set_values=overlay)
    rendered = engine_args.engine_args(manifests)
    command = [str(x) for x in values.get("vllmCommand") or []]
    cases = []
    for i, model in enumerate(engine_args.resolved_models(values)):
        assert model["name"] in rendered, f"{env.name}: no engine Deployment for model {model['name']!r}"
        argv = engine_args.parser_argv(command, rendered[model["name"]])
        cases.append(Case(env, values, i, model["name"], tuple(argv)))
    return cases


def _vllm_envs() -> list[Path]:
    return [e for e in ENV_FILES if engine_args.vllm_values(environments.test_layers([e])).get("engine") == "vllm"]


# A misspelt flag in extraArgs (British spelling) and a bad value in a typed field.
TYPO_OVERLAY = {"vllm": {"models": [{"name": "tiny", "servedModelName": "tiny-llm", "source": "pvc://models/tiny-llama",
                                      "extraArgs": ["--max-num-seqs", "4", "--gpu-memory-utilisation", "0.5"]}]}}
# The schema leaves kvCacheDtype a free string: vLLM must catch a bad one.
BAD_KV_OVERLAY = {"vllm": {"modelDefaults": {"kvCacheDtype": "fp9"}}}
EXTRA_ARGS_OVERLAY = {"vllm": {"modelDefaults": {"extraArgs": ["--max-num-seqs", "4"]}}}
# argparse accepts an unambiguous prefix of a flag: parses today, breaks when vLLM adds a flag.
ABBREV_OVERLAY = {"vllm": {"modelDefaults": {"extraArgs": ["--enable-prefix-cachin"]}}}
GPU_OVERLAY = {"vllm": {"modelDefaults": {"gpuMemoryUtilization": 0.9, "gpu": {"count": 1}}}}
SCHEMA = json.loads((paths.CHARTS_DIR / "vllm" / "values.schema.json").read_text())
DTYPES = SCHEMA["properties"]["modelDefaults"]["properties"]["dtype"]["enum"]
OVERLAYS = {
    "typo": TYPO_OVERLAY,
    "bad-kv-cache-dtype": BAD_KV_OVERLAY,
    "extra-args": EXTRA_ARGS_OVERLAY,
    "gpu": GPU_OVERLAY,
    "abbrev": ABBREV_OVERLAY,
    **{f"dtype-{d}": {"vllm": {"modelDefaults": {"dtype": d}}} for d in DTYPES},
}


@pytest.fixture(scope="session")
def parsed(engine_python: Path) -> dict[str, tuple[Case, engine.ParseResult]]:
    """Every case of the session, parsed by vLLM in one interpreter, keyed by case id."""
    cases: dict[str, Case] = {}
    for env in _vllm_envs():
        for case in _cases(env):
            cases[f"{env.name}:{case.model}"] = case
    for key, overlay in OVERLAYS.items():
        (case,) = _cases(TYPO_VALUES, overlay)
        cases[key] = case
    results = engine.parse_engine_args([c.argv for c in cases.values()])
    return {key: (case, res) for (key, case), res in zip(cases.items(), results, strict=True)}


def test_at_least_one_environment_serves_with_real_vllm() -> None:
    assert TYPO_VALUES in _vllm_envs(), "values/local-vllm.yaml must select engine: vllm"


@pytest.mark.parametrize("env", _vllm_envs(), ids=lambda p: p.name)
def test_rendered_engine_args_parse_and_every_typed_value_reaches_its_option(
    env: Path, parsed: dict[str, tuple[Case, engine.ParseResult]]
) -> None:
    mine = [(c, r) for key, (c, r) in parsed.items() if c.env == env and key.startswith(env.name + ":")]
    assert mine, f"{env.name}: no vllm models rendered"
    for case, result in mine:
        where = f"{env.name} model {case.model!r}"
        assert result.ok, (
            f"{where}: vLLM rejected the rendered args ({engine_args.locate(result.error, case.values, case.index)}):\n"
            f"{result.error}\nargs: {' '.join(case.argv)}"
        )
        assert not result.inexact, f"{where}: abbreviated flags {result.inexact}"
        checked = engine_args.expectations(case.values, case.index)
        assert any(e.dest == "served_model_name" for e in checked)
        for exp in checked:
            got = result.values.get(exp.dest)
            assert got == exp.value and type(got) is type(exp.value), (
                f"{where}: {exp.values_path}={exp.value!r} arrived as {exp.dest}={got!r}"
            )


def test_gpu_memory_utilization_arrives_as_a_float_option(parsed: dict[str, tuple[Case, engine.ParseResult]]) -> None:
    _, result = parsed["gpu"]
    assert result.ok, result.error
    assert result.values["gpu_memory_utilization"] == 0.9
    assert isinstance(result.values["gpu_memory_utilization"], float)


def test_extra_args_typo_is_rejected_and_named_by_values_path(parsed: dict[str, tuple[Case, engine.ParseResult]]) -> None:
    case, result = parsed["typo"]
    assert not result.ok, "vLLM accepted --gpu-memory-utilisation (British spelling)"
    assert "--gpu-memory-utilisation" in result.error
    assert engine_args.locate(result.error, case.values, case.index) == ["vllm.models[0].extraArgs[2]"]


def test_extra_args_are_appended_last_so_they_override_typed_flags(
    parsed: dict[str, tuple[Case, engine.ParseResult]],
) -> None:
    case, result = parsed["extra-args"]
    assert result.ok, result.error
    assert case.argv.count("--max-num-seqs") == 2, "local-vllm sets maxNumSeqs and extraArgs sets it again"
    assert result.values["max_num_seqs"] == 4


def test_free_string_value_vllm_rejects_is_named_by_values_path(
    parsed: dict[str, tuple[Case, engine.ParseResult]],
) -> None:
    case, result = parsed["bad-kv-cache-dtype"]
    assert not result.ok, "vLLM accepted --kv-cache-dtype fp9"
    assert "--kv-cache-dtype" in result.error
    assert engine_args.locate(result.error, case.values, case.index) == ["vllm.modelDefaults.kvCacheDtype"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_the_schema_allows_is_a_vllm_dtype(dtype: str, parsed: dict[str, tuple[Case, engine.ParseResult]]) -> None:
    _, result = parsed[f"dtype-{dtype}"]
    assert result.ok, f"values.schema.json allows dtype {dtype!r} but vLLM rejects it: {result.error}"
    assert result.values["dtype"] == dtype


def test_abbreviated_extra_arg_is_flagged_with_its_values_path(parsed: dict[str, tuple[Case, engine.ParseResult]]) -> None:
    case, result = parsed["abbrev"]
    assert result.ok, "argparse accepts the unambiguous prefix; the check must not rely on a parse error"
    assert result.values["enable_prefix_caching"] is True
    assert result.inexact == ("--enable-prefix-cachin",)
    path = engine_args.locate(f"unrecognized arguments: {result.inexact[0]}", case.values, case.index)
    assert path == ["vllm.modelDefaults.extraArgs[0]"]
