"""`llmops upgrade --diff` against a live release: Helm's server-side dry run, kubectl diff, and the refusals."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

from llmops import cli, cluster, paths
from llmops.cluster import release

from .test_charts import INSTALL_TIMEOUT, UMBRELLA, _wait_available

LOCAL = paths.VALUES_DIR / "local.yaml"


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_upgrade_diff_shows_the_change_refuses_a_dropped_model_and_upgrade_applies_it(
    local_cluster: cluster.ClusterInfo, helm_bin: str, tmp_path: Path
) -> None:
    two = tmp_path / "two-models.yaml"
    base = yaml.safe_load(LOCAL.read_text())
    base["vllm"]["models"].append({"name": "small", "servedModelName": "small-llm",
                                   "source": "hf://HuggingFaceTB/SmolLM2-360M-Instruct@main"})
    two.write_text(yaml.safe_dump(base))
    marked = tmp_path / "marked.yaml"
    marked.write_text(yaml.safe_dump({"vllm": {"modelDefaults": {"extraEnv": [
        {"name": "LLMOPS_UPGRADE_MARK", "value": "2"}]}}}))
    name = f"preview-h{helm_bin[-1]}"
    rel = release.Release(name, name, helm_bin, local_cluster.name)
    common = ["upgrade", "--cluster", local_cluster.name, "--release", name, "-n", name, "--helm", helm_bin,
              "--chart", str(UMBRELLA)]
    try:
        rel.install(UMBRELLA, [two], timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, name)

        code, out, err = _run(*common, "-f", str(two), "-f", str(marked), "--diff")
        assert code == 0, err
        assert "LLMOPS_UPGRADE_MARK" in out and out.count("+++ ") >= 2, "kubectl diff shows both engines' new env"
        assert len(rel.history()) == 1, "--diff must not upgrade"

        code, out, err = _run(*common, "-f", str(LOCAL), "--diff")
        assert code == 1
        assert "refused: model small is dropped and no Prometheus was given" in err
        assert f"- Deployment/{name}-small (leaves the release)" in out
        code, _out, err = _run(*common, "-f", str(LOCAL), "--diff", "--force")
        assert code == 0, err

        code, out, err = _run(*common, "-f", str(two), "-f", str(marked))
        assert code == 0, err
        assert len(rel.history()) == 2
    finally:
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("helm_bin", ["helm3"])
def test_upgrade_diff_of_a_release_that_is_not_installed_says_so(local_cluster: cluster.ClusterInfo, helm_bin: str) -> None:
    code, _out, err = _run("upgrade", "--cluster", local_cluster.name, "--release", "absent", "-n", "absent-ns",
                           "--diff")
    assert code == 2 and "release absent is not installed in namespace absent-ns" in err
