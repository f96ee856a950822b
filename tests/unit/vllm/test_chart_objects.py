"""charts/vllm PDB, Service account, helm test hook, NOTES, simulator flags and ci/ scenarios."""

from __future__ import annotations

import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from llmops import tools
from llmops.validate import kubeschema, render

from ._helpers import deployments, engine, env, flag_values, pod_spec

CHART = "vllm"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_scenarios_render_gpu_free_pvc_free_and_schema_valid(render_chart, values: Path) -> None:
    manifests = render_chart(CHART, [values])
    objs = [m.obj for m in manifests]
    assert kubeschema.validate_objects(objs) == []
    assert not render.find(manifests, "PersistentVolumeClaim")
    assert "nvidia.com/gpu" not in json.dumps([o for o in objs if o["kind"] == "Deployment"])
    services = render.find(manifests, "Service")
    assert services, f"{values.name} renders no Service"
    assert all(s["spec"]["type"] == "ClusterIP" for s in services)


def test_pdb_uses_max_unavailable_never_min_available_and_selects_the_model(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"pdb": {"maxUnavailable": "50%"}})
    (pdb,) = render.find(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%"
    assert "minAvailable" not in pdb["spec"]
    (dep,) = render.find(manifests, "Deployment")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_pdb_can_be_disabled(render_chart) -> None:
    assert not render.find(render_chart(CHART, set_values={"pdb": {"enabled": False}}), "PodDisruptionBudget")


def test_service_account_does_not_automount_its_token(render_chart) -> None:
    manifests = render_chart(CHART)
    (sa,) = render.find(manifests, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    (dep,) = render.find(manifests, "Deployment")
    assert pod_spec(dep)["serviceAccountName"] == sa["metadata"]["name"]


def test_helm_test_hook_sends_a_chat_completion_to_every_model_and_adapter(render_chart) -> None:
    values = {
        "engine": "vllm",  # the simulator checks no API key; the chart refuses apiKey with it
        "models": [
            {"name": "a", "servedModelName": "alpha", "source": "hf://o/a@1"},
            {"name": "b", "source": "hf://o/b@1", "loraAdapters": [{"name": "sql", "source": "pvc://l/sql"}]},
        ],
        "apiKey": {"enabled": True, "secretName": "keys"},
    }
    manifests = render_chart(CHART, set_values=values)
    (pod,) = [m.obj for m in manifests if m.obj["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    targets = json.loads(env(c)["TARGETS"])
    assert targets == [
        {"model": "alpha", "url": "http://llmops-a.llmops.svc:8000/v1/chat/completions"},
        {"model": "b", "url": "http://llmops-b.llmops.svc:8000/v1/chat/completions"},
        {"model": "sql", "url": "http://llmops-b.llmops.svc:8000/v1/chat/completions"},
    ]
    script = c["args"][0]
    assert "status == 200" in script and "content.strip()" in script and "sys.exit(1 if failed else 0)" in script
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert any(v.get("secret", {}).get("secretName") == "keys" for v in pod["spec"]["volumes"])


def test_helm_test_script_is_valid_python() -> None:
    text = (render.chart_path(CHART) / "templates" / "tests" / "test-chat-completion-pod.yaml").read_text()
    block = text.split("        - |\n", 1)[1].split("      resources:", 1)[0]
    code = "\n".join(line[10:] for line in block.splitlines())
    compile(code, "helm-test", "exec")


SIMULATOR = tools.load_specs()["inference-sim"]  # the pinned llm-d-inference-sim (pyproject.toml)
# pflag's usage lines: "      --model string   ..." and "  -h, --help".
_HELP_FLAG = re.compile(r"^\s+(?:-\w, )?--([a-z0-9][a-z0-9_-]*)", re.MULTILINE)


@lru_cache(maxsize=1)
def _simulator_flags() -> frozenset[str]:
    """Flags the pinned llm-d-inference-sim accepts, from the binary's own --help."""
    proc = subprocess.run([str(tools.require(SIMULATOR.install_as)), "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    names = frozenset(_HELP_FLAG.findall(proc.stdout + proc.stderr))
    assert proc.returncode == 0 and {"model", "port", "served-model-name"} <= names, (
        f"`llm-d-inference-sim --help` exited {proc.returncode} listing {sorted(names)}")
    return names


def test_simulator_args_use_only_flags_the_pinned_simulator_accepts(render_chart) -> None:
    values = Path(render.chart_path(CHART) / "ci" / "02-many-defaults-values.yaml")
    deps = deployments(render_chart(CHART, [values]))
    assert deps, f"{values.name} renders no engine"
    for dep in deps.values():
        c = engine(dep)
        # The flags come from the pinned binary; the pods run the image of the same version.
        assert c["image"].rsplit(":", 1)[-1].split("@")[0] == SIMULATOR.version, c["image"]
        used = {a[2:].split("=", 1)[0] for a in c["args"] if a.startswith("--")}
        assert used <= _simulator_flags(), used - _simulator_flags()
        flags = flag_values(c["args"])
        assert flags["--port"] == [str(c["ports"][0]["containerPort"])]


def test_flag_reader_sees_every_kind_of_simulator_flag() -> None:
    flags = _simulator_flags()
    assert {"time-to-first-token", "max-num-seqs", "lora-modules"} <= flags  # string, int and JSON flags
    assert {"enable-sleep-mode", "no-enable-sleep-mode"} <= flags  # a toggle registers both spellings
    assert "model-that-does-not-exist" not in flags


def test_simulator_lora_modules_are_json_objects_naming_the_base_model_as_its_model_flag(render_chart) -> None:
    # llm-d-inference-sim matches base_model_name against --model and exits
    # ("unknown base model") when it names the served name instead.
    values = {"models": [{"name": "m", "servedModelName": "base", "source": "hf://o/m@a", "loraAdapters": [{"name": "sql", "source": "pvc://l/sql"}]}]}
    (dep,) = deployments(render_chart(CHART, set_values=values)).values()
    flags = flag_values(engine(dep)["args"])
    (lora,) = flags["--lora-modules"]
    assert flags["--model"] == ["o/m"] and flags["--served-model-name"] == ["base"]
    assert json.loads(lora) == {"name": "sql", "path": "/models/m-lora-sql", "base_model_name": "o/m"}


@pytest.mark.parametrize(
    "chart_and_values",
    [(c, v) for c in ("vllm", "llmops-stack") for v in sorted((render.chart_path(c) / "ci").glob("*-values.yaml"))],
    ids=lambda cv: f"{cv[0]}/{cv[1].name}",
)
def test_helm_lint_strict_is_clean_for_every_ci_scenario(helm: str, chart_and_values: tuple[str, Path]) -> None:
    chart, values = chart_and_values
    render.ensure_dependencies(chart, helm)
    proc = subprocess.run(
        [str(tools.require(helm)), "lint", "--strict", str(render.chart_path(chart)), "--values", str(values)],
        capture_output=True, text=True, env=tools.tool_env(), check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "[WARNING]" not in out and "[ERROR]" not in out, out
