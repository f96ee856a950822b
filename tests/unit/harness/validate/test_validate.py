"""`llmops validate` and `llmops policy` on the real charts and every environment in values/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmops import environments, paths, validate
from llmops.validate import policy

FIXTURES = paths.REPO_ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "invalid-values"


def llmops(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(paths.REPO_ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "llmops", *args], capture_output=True, text=True, env=env,
                          cwd=paths.REPO_ROOT, timeout=300, check=False)


def test_every_environment_passes_all_validation_steps() -> None:
    # the test-only digests replace the production files' placeholders (see the next test)
    targets = validate.targets_from(all_envs=True, overlays=[environments.TEST_IMAGE_DIGESTS])
    assert {t.name for t in targets} >= {"local", "staging", "production-h100", "production-70b", "air-gapped"}
    results = validate.validate(targets)
    report = validate.format_text(results)
    assert len(results) == len(targets), report
    assert all(r.ok for r in results), report
    for r in results:
        assert r.steps == {"values": "ok", "render": "ok", "kubernetes": "ok", "crd": "ok", "crosscheck": "ok"}
        assert set(r.manifests) == {"helm3", "helm4"} and r.manifests["helm3"]


def test_all_without_an_overlay_reports_each_placeholder_digest_by_values_path() -> None:
    proc = llmops("validate", "--all", "--kube-versions", "")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for env in ("production-h100", "production-70b", "air-gapped"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"{env} ["))
        assert "INVALID (1 problem(s))" in line, proc.stdout
    assert "values/production-h100.yaml:" in proc.stdout and "vllm.image.digest: placeholder digests" in proc.stdout
    assert "crane digest" in proc.stdout
    for env in ("local", "local-vllm", "staging"):
        assert any(ln.startswith(f"{env} [") and ln.endswith(": ok") for ln in proc.stdout.splitlines()), proc.stdout


def test_overlay_is_layered_last_onto_every_target(tmp_path: Path) -> None:
    overlay = tmp_path / "digests.yaml"
    overlay.write_text(environments.TEST_IMAGE_DIGESTS.read_text())
    targets = validate.targets_from(envs=["production-h100", "local"], overlays=[overlay])
    assert [t.files[-1] for t in targets] == [overlay, overlay]
    with pytest.raises(Exception, match="overlay file"):
        validate.targets_from(envs=["local"], overlays=[tmp_path / "missing.yaml"])


def test_cli_reports_schema_errors_as_file_line_path_and_exits_1() -> None:
    case = CORPUS / "vllm-model-key-typo.yaml"
    proc = llmops("validate", "-f", str(case))
    assert proc.returncode == 1, proc.stderr
    rel = case.relative_to(paths.REPO_ROOT)
    line = next(i for i, t in enumerate(case.read_text().splitlines(), 1) if t.strip().startswith("maxModelLenn:"))
    assert f"{rel}:{line}: vllm.models[0].maxModelLenn: unknown key 'maxModelLenn'; did you mean 'maxModelLen'?" in proc.stdout
    assert "values failed" in proc.stderr  # progress goes to stderr


def test_cli_reports_chart_rule_violations_from_helm_and_exits_1() -> None:
    proc = llmops("validate", "-f", str(CORPUS / "vllm-grace-period-too-short.yaml"), "--output", "json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    [target] = data["targets"]
    assert target["steps"]["values"] == "ok" and target["steps"]["render"] == "failed"
    case = "tests/fixtures/invalid-values/vllm-grace-period-too-short.yaml"
    [problem] = target["problems"]
    assert problem["path"] == "vllm.shutdown.terminationGracePeriodSeconds"
    assert problem["where"] == f"{case}:7"  # the line that set it
    assert "must be larger than preStopSleepSeconds + drainSeconds = 70" in problem["message"]
    assert "helm3, helm4" in problem["message"]


def test_cli_json_for_a_valid_environment_exits_0() -> None:
    proc = llmops("validate", "--env", "local", "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["targets"][0]["objects"]["helm4"] > 0


@pytest.mark.parametrize("args", [(), ("--env", "no-such-env"), ("-f", "missing.yaml"), ("--env", "local", "--helm", "helm2")])
def test_cli_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    proc = llmops("validate", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr


def test_layered_files_are_one_target_and_later_files_win(tmp_path: Path) -> None:
    fix = tmp_path / "fix.yaml"
    fix.write_text("vllm:\n  shutdown:\n    terminationGracePeriodSeconds: 200\n")
    bad = CORPUS / "vllm-grace-period-too-short.yaml"
    [broken] = validate.validate(validate.targets_from(files=[str(fix), str(bad)]), kube_versions=())
    [fixed] = validate.validate(validate.targets_from(files=[str(bad), str(fix)]), kube_versions=())
    assert not broken.ok and fixed.ok, validate.format_text([broken, fixed])


@pytest.mark.slow
def test_policy_passes_every_environment_with_only_reasoned_exceptions(tmp_path: Path) -> None:
    # every environment, and local with a model held at zero (the KEDA HTTP add-on's objects)
    held = [str(validate.env_file("local")), str(FIXTURES / "scale-from-zero.yaml")]
    report = policy.check(validate.targets_from(all_envs=True, files=held, overlays=[environments.TEST_IMAGE_DIGESTS]))
    assert report.ok, policy.summary_text(report)
    assert report.resources_scanned > 0
    assert report.stale_exceptions == []
    excepted = [r for r in report.results if r.status == "excepted"]
    assert all(r.reason for r in excepted)
    # the custom checks and the Python coverage check really ran on every environment
    ran = {(r.env, r.check_id) for r in report.results}
    assert report.envs, "policy scanned no environment"
    for env in report.envs:
        for check_id in ("CKV_LLMOPS_1", "CKV_LLMOPS_4", "CKV_LLMOPS_7", "CKV_LLMOPS_8"):
            assert (env, check_id) in ran
    files = policy.write_reports(report, tmp_path)
    assert json.loads(files["sarif"].read_text())["version"] == "2.1.0"
