"""charts/loadtest: Locust master and worker Jobs, ConfigMaps, restricted security, validation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmops import paths, tools
from llmops.validate import kubeschema, render
from llmops.loadtest import chartfiles, profiles, shapes
from llmops.validate.render import RenderError

CHART = "loadtest"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))
URL = {"target": {"url": "http://llmops-tiny.llmops.svc:8000"}}


def _job(manifests: list[render.Manifest], component: str) -> dict[str, Any]:
    jobs = [o for o in render.find(manifests, "Job") if o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert len(jobs) == 1
    return jobs[0]


def _config(manifests: list[render.Manifest]) -> dict[str, Any]:
    (cm,) = [o for o in render.find(manifests, "ConfigMap") if o["metadata"]["name"].endswith("-config")]
    return dict(json.loads(cm["data"]["config.json"]))


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_valid_kubernetes_objects(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert {o["kind"] for o in objs} >= {"Job", "ConfigMap", "Service"}
    assert kubeschema.validate_objects(objs) == []


def test_worker_replicas_set_parallelism_expected_workers_and_rate_divisor(render_chart) -> None:
    manifests = render_chart(CHART, set_values={**URL, "worker": {"replicas": 3}, "profile": {"load": {"shape": "constant", "rate": 9}}})
    worker, master = _job(manifests, "worker"), _job(manifests, "master")
    assert worker["spec"]["parallelism"] == worker["spec"]["completions"] == 3
    args = master["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--expect-workers") + 1] == "3"
    for job in (worker, master):
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["LLMOPS_RATE_DIVISOR"] == "3"
    wargs = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert wargs[wargs.index("--master-host") + 1] == "llmops-loadtest-master"


def test_master_service_selects_only_the_master_pod(render_chart) -> None:
    manifests = render_chart(CHART, set_values=URL)
    (svc,) = render.find(manifests, "Service")
    master_labels = _job(manifests, "master")["spec"]["template"]["metadata"]["labels"]
    worker_labels = _job(manifests, "worker")["spec"]["template"]["metadata"]["labels"]
    selector = svc["spec"]["selector"]
    assert selector, "an empty selector selects every pod"
    assert all(master_labels.get(k) == v for k, v in selector.items())
    assert not all(worker_labels.get(k) == v for k, v in selector.items())
    assert svc["spec"]["ports"][0]["port"] == 5557


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_every_pod_meets_restricted_and_mounts_no_service_account_token(render_chart, values: Path) -> None:
    jobs = render.find(render_chart(CHART, [values]), "Job")
    assert jobs, f"{values.name} renders no Job"
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
            assert c["resources"]["limits"]["memory"]
            assert not any("valueFrom" in e for e in c["env"]), "secrets are mounted as files, never env"


def test_global_registry_mirror_replaces_the_registry_and_a_digest_wins_over_the_tag(render_chart) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    manifests = render_chart(CHART, set_values={
        **URL, "global": {"imageRegistry": "registry.example.internal", "imagePullSecrets": ["mirror-pull"]},
        "image": {"digest": digest}})
    for component in ("master", "worker"):
        pod = _job(manifests, component)["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == f"registry.example.internal/locustio/locust@{digest}"
        assert pod["imagePullSecrets"] == [{"name": "mirror-pull"}]


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_run_the_locust_image_built_here(render_chart, values: Path) -> None:
    from llmops.cluster import images

    for job in render.find(render_chart(CHART, [values]), "Job"):
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == images.ref("locust")


def test_api_key_secret_is_mounted_as_a_file_the_locustfile_reads(render_chart) -> None:
    manifests = render_chart(CHART, set_values={**URL, "target": {**URL["target"], "apiKeySecret": {"name": "k", "key": "tok"}}})
    pod = _job(manifests, "worker")["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "api-key"]
    assert vol["secret"] == {"secretName": "k", "items": [{"key": "tok", "path": "key"}]}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-key")
    assert env["OPENAI_API_KEY_FILE"] == f"{mount['mountPath']}/key"
    assert "OPENAI_API_KEY_FILE" in (paths.REPO_ROOT / "loadtests" / "locustfile.py").read_text()


def test_empty_profile_uses_the_builtin_default_which_the_harness_accepts(render_chart) -> None:
    config = _config(render_chart(CHART, set_values=URL))
    assert config["url"] == URL["target"]["url"]
    prof = profiles.parse(config["profile"], "chart default")
    assert shapes.build(prof.load).kind == "concurrency"


def test_a_given_profile_replaces_the_default_whole(render_chart) -> None:
    given = {"name": "mine", "prompt_tokens": {"dist": "lognormal", "mean": 50, "sigma": 0.4},
             "load": {"shape": "poisson", "rate": 5, "duration": "1m"}}  # fmt: skip
    config = _config(render_chart(CHART, set_values={**URL, "profile": given}))
    assert config["profile"] == given  # no `std`/`users` leaking in from a deep merge
    shapes.build(profiles.parse(config["profile"]).load)


def test_code_configmap_ships_the_repository_locustfile_and_the_modules_it_imports(render_chart) -> None:
    # files/ is generated at render time (llmops.loadtest.chartfiles): the ConfigMap carries
    # exactly the locustfile's import closure, byte for byte as in the repository.
    (cm,) = [o for o in render.find(render_chart(CHART, set_values=URL), "ConfigMap") if o["metadata"]["name"].endswith("-code")]
    pod = _job(render_chart(CHART, set_values=URL), "master")["spec"]["template"]["spec"]
    items = next(v for v in pod["volumes"] if v["name"] == "code")["configMap"]["items"]
    assert {i["path"] for i in items} == {
        "locustfile.py", "llmops/__init__.py", "llmops/errors.py", "llmops/loadtest/__init__.py",
        "llmops/loadtest/profiles.py", "llmops/loadtest/shapes.py", "llmops/loadtest/sse.py",
        # the master summarizes the workers' samples (llmops loadtest --in-cluster reads it)
        "llmops/loadtest/stats.py",
    }  # fmt: skip
    sources = {"locustfile.py": paths.REPO_ROOT / "loadtests" / "locustfile.py"}
    assert "locustfile.py" in {item["path"] for item in items}, items
    for item in items:
        src = sources.get(item["path"], paths.REPO_ROOT / "src" / item["path"])
        assert item["key"] == item["path"].replace("/", ".")
        assert cm["data"][item["key"]].rstrip("\n") == src.read_text().rstrip("\n"), item["path"]


def test_plain_helm_template_without_generated_files_names_the_command(helm: str, tmp_path: Path) -> None:
    chart = tmp_path / CHART
    shutil.copytree(render.chart_path(CHART), chart, ignore=shutil.ignore_patterns("files"))
    argv = [str(tools.require(helm)), "template", "lt", str(chart), "--set", f"target.url={URL['target']['url']}"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "charts/loadtest/files/ is missing" in proc.stderr and "llmops chart-files" in proc.stderr


def test_generate_writes_the_closure_and_removes_files_no_longer_imported(tmp_path: Path) -> None:
    chart = tmp_path / CHART
    (chart / "files" / "llmops").mkdir(parents=True)
    (chart / "files" / "llmops" / "old_module.py").write_text("stale\n")
    written = chartfiles.generate(chart)
    assert "llmops/loadtest/sse.py" in written and "llmops/loadtest/harness.py" not in written  # only what the pod imports
    assert not (chart / "files" / "llmops" / "old_module.py").exists()
    assert (chart / "files" / "locustfile.py").read_text() == (paths.REPO_ROOT / "loadtests" / "locustfile.py").read_text()


def test_code_configmap_layout_imports_without_the_repository_or_site_packages(render_chart, tmp_path: Path) -> None:
    manifests = render_chart(CHART, set_values=URL)
    (cm,) = [o for o in render.find(manifests, "ConfigMap") if o["metadata"]["name"].endswith("-code")]
    items = next(v for v in _job(manifests, "worker")["spec"]["template"]["spec"]["volumes"] if v["name"] == "code")
    for item in items["configMap"]["items"]:
        dest = tmp_path / item["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(cm["data"][item["key"]])
    code = "import llmops.loadtest.profiles as p, llmops.loadtest.shapes, llmops.loadtest.sse; print(p.__file__)"
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path)}, check=True)  # fmt: skip
    assert out.stdout.strip().startswith(str(tmp_path))


def test_missing_target_url_fails_naming_the_values_path(render_chart) -> None:
    with pytest.raises(RenderError, match=r"loadtest.target.url: \"\" must be the base URL"):
        render_chart(CHART)


def test_fewer_clients_than_workers_and_a_privileged_override_fail_together(render_chart) -> None:
    bad = {**URL, "worker": {"replicas": 4}, "profile": {"load": {"shape": "concurrency", "users": 2}},
           "containerSecurityContext": {"allowPrivilegeEscalation": True}}  # fmt: skip
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=bad)
    assert "loadtest.profile.load.users: 2 clients leave some of the 4 workers idle" in str(err.value)
    assert "loadtest.containerSecurityContext.allowPrivilegeEscalation: must be false" in str(err.value)


def test_schema_rejects_a_typo_in_the_chart_values(render_chart) -> None:
    with pytest.raises(RenderError, match="additional properties 'replica' not allowed"):
        render_chart(CHART, set_values={**URL, "worker": {"replica": 2}})
