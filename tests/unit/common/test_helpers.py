"""charts/common library helpers, called from a throwaway chart that depends on the library."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import paths
from llmops.validate.render import RenderError

# The probe chart pins the library exactly as the suite's charts do.
COMMON_VERSION = str(yaml.safe_load((paths.CHARTS_DIR / "common" / "Chart.yaml").read_text())["version"])

PROBE = """\
name: {{ include "common.names.fullname" . }}
engine: {{ include "common.names.engine" (dict "context" $ "model" .Values.model) }}
engineFromString: {{ include "common.names.engine" (dict "context" $ "model" "chat") }}
image: {{ include "common.images.image" (dict "image" .Values.image "global" .Values.global) }}
{{- with include "common.images.pullSecrets" (dict "pullSecrets" .Values.pullSecrets "global" .Values.global) }}
{{ . }}
{{- end }}
resources:
  {{- include "common.resources.render" (dict "resources" .Values.resources "preset" .Values.preset) | nindent 2 }}
labels:
  {{- include "common.labels.standard" (dict "context" $ "component" "engine") | nindent 2 }}
selector:
  {{- include "common.labels.selector" (dict "context" $ "component" "engine") | nindent 2 }}
podSecurityContext:
  {{- include "common.security.podSecurityContext" (dict "override" .Values.podSecurityContext) | nindent 2 }}
violations: {{ include "common.security.restrictedViolations" (dict "path" "x" "pod" dict "container" .Values.containerSecurityContext) | quote }}
{{- include "common.validate.fail" (dict "chart" "probe" "messages" (include "common.validate.dnsLabel" (dict "path" "probe.label" "value" .Values.label))) }}
"""


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("common-probe")
    shutil.copytree(paths.CHARTS_DIR / "common", root / "common", ignore=shutil.ignore_patterns("charts"))
    chart = root / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "probe",
                "version": "1.2.3",
                "appVersion": "v9",
                "dependencies": [{"name": "common", "version": COMMON_VERSION, "repository": "file://../common"}],
            }
        )
    )
    (chart / "values.yaml").write_text(
        yaml.safe_dump(
            {
                "global": {"imageRegistry": "", "imagePullSecrets": []},
                "model": {"name": "llama"},
                "image": {"registry": "docker.io", "repository": "org/app", "tag": "1.0", "digest": ""},
                "pullSecrets": [],
                "resources": {},
                "preset": "small",
                "podSecurityContext": {},
                "containerSecurityContext": {},
                "label": "ok",
            }
        )
    )
    (chart / "templates" / "probe.yaml").write_text(PROBE)
    return chart


def _probe(render_chart, chart: Path, **values: Any) -> dict[str, Any]:
    (manifest,) = render_chart(chart, set_values=values or None, release="rel")
    return manifest.obj


def test_engine_name_is_release_dash_model_from_a_map_or_a_string(render_chart, probe_chart: Path) -> None:
    out = _probe(render_chart, probe_chart)
    assert out["engine"] == "rel-llama" and out["engineFromString"] == "rel-chat"
    long = _probe(render_chart, probe_chart, model={"name": "m" * 70})
    assert len(long["engine"]) == 63 and not long["engine"].endswith("-")


def test_digest_wins_over_tag_and_global_registry_replaces_registry(render_chart, probe_chart: Path) -> None:
    digest = "sha256:" + "0f" * 32
    out = _probe(render_chart, probe_chart, image={"digest": digest}, **{"global": {"imageRegistry": "mirror:5000"}})
    assert out["image"] == f"mirror:5000/org/app@{digest}"
    assert _probe(render_chart, probe_chart)["image"] == "docker.io/org/app:1.0"


def test_malformed_digest_fails(render_chart, probe_chart: Path) -> None:
    with pytest.raises(RenderError, match="is not sha256"):
        _probe(render_chart, probe_chart, image={"digest": "sha256:abc"})


def test_pull_secrets_merge_global_first_without_duplicates(render_chart, probe_chart: Path) -> None:
    out = _probe(render_chart, probe_chart, pullSecrets=["b", {"name": "a"}], **{"global": {"imagePullSecrets": ["a"]}})
    assert out["imagePullSecrets"] == [{"name": "a"}, {"name": "b"}]
    assert "imagePullSecrets" not in _probe(render_chart, probe_chart)


def test_explicit_resources_win_and_unknown_preset_fails_even_then(render_chart, probe_chart: Path) -> None:
    explicit = {"requests": {"cpu": "1"}}
    assert _probe(render_chart, probe_chart, resources=explicit)["resources"] == explicit
    assert _probe(render_chart, probe_chart, preset="none")["resources"] == {}
    with pytest.raises(RenderError, match='resources preset "tiny" is unknown'):
        _probe(render_chart, probe_chart, resources=explicit, preset="tiny")


def test_selector_is_the_immutable_subset_of_the_standard_labels(render_chart, probe_chart: Path) -> None:
    out = _probe(render_chart, probe_chart)
    assert out["selector"].items() <= out["labels"].items()
    assert set(out["selector"]) == {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}
    assert out["labels"]["app.kubernetes.io/version"] == "v9"
    assert out["labels"]["helm.sh/chart"] == "probe-1.2.3"
    assert out["labels"]["app.kubernetes.io/part-of"] == "llmops-stack"


def test_security_baseline_is_restricted_and_user_keys_override(render_chart, probe_chart: Path) -> None:
    psc = _probe(render_chart, probe_chart, podSecurityContext={"runAsUser": 20000})["podSecurityContext"]
    assert psc["runAsUser"] == 20000 and psc["runAsNonRoot"] is True
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_restricted_violations_name_each_broken_field(render_chart, probe_chart: Path) -> None:
    bad = {"allowPrivilegeEscalation": True, "capabilities": {"drop": [], "add": ["NET_ADMIN"]}}
    text = _probe(render_chart, probe_chart, containerSecurityContext=bad)["violations"]
    for fragment in ("x.allowPrivilegeEscalation", "x.capabilities.drop", "NET_ADMIN is not allowed", "x.runAsNonRoot"):
        assert fragment in text


def test_validate_fail_lists_problems_with_their_paths(render_chart, probe_chart: Path) -> None:
    with pytest.raises(RenderError, match=r'probe values are invalid \(1 problem\(s\)\):\n- probe.label: "Not_A_Label"'):
        _probe(render_chart, probe_chart, label="Not_A_Label")
