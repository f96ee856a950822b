"""llmops policy: our checkov checks, exceptions, whole-environment checks and reports.

The custom checks run inside the real pinned checkov (one run for all cases): each synthetic Deployment below differs from a compliant one by one
mistake, and the test asserts exactly which CKV_LLMOPS checks fail for it.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.validate import policy
from llmops.errors import LlmopsError, ToolError
from llmops.validate.render import Manifest

DIGEST = "sha256:" + "0123456789abcdef" * 4
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
ENGINE_LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/component": "engine", "llmops.io/model": "m"}


def compliant(name: str, env: str = "production") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "llmops", "annotations": {policy.ENV_ANNOTATION: env}},
        "spec": {
            "selector": {"matchLabels": ENGINE_LABELS},
            "template": {
                "metadata": {"labels": dict(ENGINE_LABELS)},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "vllm",
                        "image": f"docker.io/vllm/vllm-openai:v0.32.0@{DIGEST}",
                        "args": ["--api-key", "$(VLLM_API_KEY)"],
                        "ports": [{"name": "http", "containerPort": 8000}],
                        "startupProbe": {"httpGet": {"path": "/health", "port": "http"}},
                        "env": [
                            {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "api-key"}}},
                            {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/hf/token"},
                        ],
                        "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                    }],
                    "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
                },
            },
        },
    }


def _container(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def _pod(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]  # type: ignore[no-any-return]


Mutation = Callable[[dict[str, Any]], None]
# name -> (mutation, environment, CKV_LLMOPS checks that must fail)
CASES: dict[str, tuple[Mutation, str, set[str]]] = {
    "good": (lambda d: None, "production", set()),
    "latest-tag": (lambda d: _container(d).update(image="vllm/vllm-openai:latest"), "local",
                   {"CKV_LLMOPS_1"}),
    "untagged": (lambda d: _container(d).update(image="vllm/vllm-openai"), "local", {"CKV_LLMOPS_1"}),
    "prod-tag-only": (lambda d: _container(d).update(image="vllm/vllm-openai:v0.32.0"), "production",
                      {"CKV_LLMOPS_2"}),
    "staging-tag-only": (lambda d: _container(d).update(image="vllm/vllm-openai:v0.32.0"), "staging", set()),
    "prod-placeholder-digest": (lambda d: _container(d).update(image=f"vllm/vllm-openai@{PLACEHOLDER_DIGEST}"),
                                "production", {"CKV_LLMOPS_2"}),
    "staging-placeholder-digest": (lambda d: _container(d).update(image=f"vllm/vllm-openai@{PLACEHOLDER_DIGEST}"),
                                   "staging", {"CKV_LLMOPS_2"}),
    "gpu-no-toleration": (lambda d: _pod(d).pop("tolerations"), "production", {"CKV_LLMOPS_3"}),
    "gpu-request-no-limit": (lambda d: _container(d)["resources"].pop("limits"), "production", {"CKV_LLMOPS_3"}),
    # global.gpu.taint says GPU nodes carry gpu-node=NoExecute: the nvidia.com/gpu toleration no longer helps.
    "custom-taint-not-tolerated": (
        lambda d: d["metadata"]["annotations"].update({policy.GPU_TAINT_ANNOTATION: "gpu-node:NoExecute"}),
        "production", {"CKV_LLMOPS_3"}),
    "custom-taint-tolerated": (
        lambda d: (d["metadata"]["annotations"].update({policy.GPU_TAINT_ANNOTATION: "gpu-node:NoExecute"}),
                   _pod(d)["tolerations"].append({"key": "gpu-node", "operator": "Exists"})),
        "production", set()),
    "cpu-pod-no-toleration": (lambda d: (_pod(d).pop("tolerations"), _container(d).pop("resources")),
                              "production", set()),
    "privileged": (lambda d: _container(d)["securityContext"].update(privileged=True), "production",
                   {"CKV_LLMOPS_4"}),
    "may-run-as-root": (lambda d: _pod(d)["securityContext"].pop("runAsNonRoot"), "production", {"CKV_LLMOPS_4"}),
    "keeps-capabilities": (lambda d: _container(d)["securityContext"].pop("capabilities"), "production",
                           {"CKV_LLMOPS_4"}),
    "host-path": (lambda d: _pod(d)["volumes"].append({"name": "h", "hostPath": {"path": "/models"}}),
                  "production", {"CKV_LLMOPS_4"}),
    "shm-unbounded": (lambda d: _pod(d)["volumes"][0]["emptyDir"].pop("sizeLimit"), "production",
                      {"CKV_LLMOPS_5"}),
    "engine-no-startup-probe": (lambda d: _container(d).pop("startupProbe"), "production", {"CKV_LLMOPS_6"}),
    "router-no-startup-probe": (
        lambda d: (_container(d).pop("startupProbe"),
                   d["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/component": "router"})),
        "production", set()),
    "literal-hf-token": (lambda d: _container(d)["env"].append({"name": "HF_TOKEN", "value": "hf_abc"}),
                         "production", {"CKV_LLMOPS_7"}),
    "literal-api-key-flag": (lambda d: _container(d).update(args=["--api-key=sk-123"]), "production",
                             {"CKV_LLMOPS_7"}),
}


@pytest.fixture
def checkov_results(tmp_path: Path) -> dict[str, set[str]]:
    """{deployment name: failed CKV_LLMOPS check ids} from one real checkov run."""
    root = tmp_path
    scan = root / "manifests"
    scan.mkdir()
    docs = []
    for name, (mutate, env, _expected) in CASES.items():
        d = compliant(name, env)
        mutate(d)
        docs.append(d)
    (scan / "synthetic.yaml").write_text(yaml.safe_dump_all(docs))
    data = policy.run_checkov(scan, root / "out")
    assert data["summary"]["resource_count"] >= len(CASES)
    failed: dict[str, set[str]] = {name: set() for name in CASES}
    seen: set[str] = set()
    for r in policy._checkov_results(data, {}):
        if r.check_id.startswith("CKV_LLMOPS_"):
            name = r.resource.rsplit("/", 1)[-1]
            seen.add(r.check_id)
            if r.status == "failed":
                failed[name].add(r.check_id)
                assert r.details, f"{r.check_id} on {name} failed without saying why"
    assert seen == {f"CKV_LLMOPS_{i}" for i in range(1, 8)}, "a custom check did not load"
    return failed


@pytest.mark.slow
def test_each_custom_check_fails_exactly_for_its_mistake(checkov_results: dict[str, set[str]]) -> None:
    # One test over the whole table: checkov takes ~10 s to start, so the cases share one run
    # (parametrizing would start it again on every xdist worker).
    assert checkov_results == {name: expected for name, (_m, _env, expected) in CASES.items()}


# --------------------------------------------------------------------------- exceptions


def _result(check: str = "CKV_K8S_11", resource: str = "Deployment/llmops/x", env: str = "local") -> policy.Result:
    return policy.Result(check, "t", env, resource, "failed")


def test_exception_without_reason_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("exceptions:\n  - check: CKV_K8S_11\n    resource: '*'\n")
    with pytest.raises(LlmopsError, match=r"e.yaml:2: exceptions\[0\] needs reason"):
        policy.load_exceptions(f)


def test_exception_with_unknown_key_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("exceptions:\n  - check: X\n    resource: '*'\n    reason: r\n    env: [local]\n")
    with pytest.raises(LlmopsError, match="unknown key"):
        policy.load_exceptions(f)


def test_exception_matches_check_resource_and_env_globs_and_reports_stale_ones() -> None:
    exc = [
        policy.PolicyException("CKV_K8S_11", "Deployment/*/*", "cpu"),
        policy.PolicyException("CKV_K8S_15", "*", "pull", ("staging",)),
        policy.PolicyException("CKV_K8S_99", "*", "never matches"),
    ]
    results = [_result(), _result("CKV_K8S_15", env="local"), _result("CKV_K8S_15", env="staging"),
               _result(resource="Pod/llmops/x")]
    stale = policy.apply_exceptions(results, exc)
    assert [r.status for r in results] == ["excepted", "failed", "excepted", "failed"]
    assert results[0].reason == "cpu"
    assert [e.check for e in stale] == ["CKV_K8S_99"]


def test_repository_exceptions_all_have_reasons() -> None:
    entries = policy.load_exceptions()
    assert entries and all(len(e.reason) > 20 for e in entries)


# --------------------------------------------------------------------------- network policy coverage


def _deploy(labels: dict[str, str]) -> Manifest:
    d = compliant("m")
    d["spec"]["template"]["metadata"]["labels"] = labels
    return Manifest(d, "t.yaml")


def _netpol(selector: dict[str, str], types: list[str] | None) -> Manifest:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector}, "ingress": [{}]}
    if types is not None:
        spec["policyTypes"] = types
    return Manifest({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "np"}, "spec": spec}, "np.yaml")


@pytest.mark.parametrize(
    ("policies", "missing"),
    [
        ([], "Egress, Ingress"),
        ([_netpol({}, ["Ingress", "Egress"])], None),
        ([_netpol({"app.kubernetes.io/component": "engine"}, ["Ingress"])], "Egress"),
        ([_netpol({}, None)], "Egress"),  # no policyTypes and no egress rules: ingress only
        ([_netpol({"app.kubernetes.io/component": "router"}, ["Ingress", "Egress"])], "Egress, Ingress"),
    ],
)
def test_network_policy_coverage_needs_ingress_and_egress(policies: list[Manifest], missing: str | None) -> None:
    [r] = policy.network_policy_coverage("local", [_deploy(ENGINE_LABELS), *policies], "llmops")
    assert r.status == ("passed" if missing is None else "failed")
    if missing:
        assert r.details == [f"no NetworkPolicy selects this pod for {missing}"]


# --------------------------------------------------------------------------- reports


def _report() -> policy.PolicyReport:
    results = [
        policy.Result("CKV_LLMOPS_1", "no latest", "local", "Deployment/llmops/a", "failed", ["image x uses latest"],
                      "charts/vllm/templates/engine-deployment.yaml"),
        policy.Result("CKV_K8S_11", "cpu limits", "local", "Deployment/llmops/a", "excepted", reason="throttling"),
        policy.Result("CKV_K8S_12", "mem", "staging", "Deployment/llmops/a", "passed"),
    ]
    return policy.PolicyReport(results, ["local", "staging"], 2, [], {})


def test_reports_carry_failures_exceptions_and_passes(tmp_path: Path) -> None:
    # JUnit XML and SARIF come from checkov's own writers (run in checkov's venv).
    files = policy.write_reports(_report(), tmp_path)
    suites = ET.parse(files["junit"]).getroot()
    local = suites.find("testsuite[@name='local scan']")
    assert local is not None and local.get("failures") == "1" and local.get("skipped") == "1"
    failure = local.find("testcase/failure")
    assert failure is not None and "image x uses latest" in (failure.text or "")
    assert "local/Deployment/llmops/a" in (failure.text or "")
    skipped = local.find("testcase/skipped")
    assert skipped is not None and skipped.get("message") == "exception: throttling"
    staging = suites.find("testsuite[@name='staging scan']")
    assert staging is not None and staging.get("tests") == "1" and staging.get("failures") == "0"
    sarif = json.loads(files["sarif"].read_text())
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["CKV_LLMOPS_1", "CKV_K8S_11"]
    assert [r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]] == ["CKV_LLMOPS_1", "CKV_K8S_11"]
    assert results[0]["level"] == "error" and "suppressions" not in results[0]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("engine-deployment.yaml")
    assert results[1]["suppressions"][0]["justification"] == "exception: throttling"
    data = json.loads(files["json"].read_text())
    assert data["ok"] is False and len(data["results"]) == 3
    assert "FAILED local: CKV_LLMOPS_1 Deployment/llmops/a: image x uses latest" in files["summary"].read_text()


def test_zero_resources_scanned_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="scanned 0 resources"):
        policy.require_scanned({"resource_count": 0, "parsing_errors": 0}, 12)
    policy.require_scanned({"resource_count": 12, "parsing_errors": 0}, 12)
