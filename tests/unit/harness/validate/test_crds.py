"""llmops.validate.crds: pinned operator CRDs from Go modules and custom-resource validation."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.validate import crds


def _scaled_object(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scaleTargetRef": {"name": "llmops-chat"},
        "triggers": [{"type": "prometheus", "metadata": {"serverAddress": "http://p:9090", "query": "q", "threshold": "5"}}],
    }
    base.update(spec)
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "chat"}, "spec": base}


def test_every_pin_resolves_to_crd_files_of_its_group() -> None:
    groups = set(crds.target_groups())
    assert {"keda.sh", "monitoring.coreos.com", "cert-manager.io", "nvidia.com", "gateway.networking.k8s.io"} <= groups
    names = {p.name for p in crds.crd_files()}
    assert "keda.sh_scaledobjects.yaml" in names
    assert "gateway.networking.k8s.io_httproutes.yaml" in names
    assert all(d["kind"] == "CustomResourceDefinition" for d in crds.crd_documents())


def test_valid_scaled_object_has_no_findings() -> None:
    assert crds.validate_custom_resources([_scaled_object(minReplicaCount=1, maxReplicaCount=4)]) == []


def test_unknown_spec_field_is_reported_with_its_path_and_allowed_fields() -> None:
    (finding,) = crds.validate_custom_resources([_scaled_object(maxReplicas=4)])
    assert finding.path == "spec"
    assert "maxReplicas" in finding.message and "maxReplicaCount" in finding.message


def test_wrong_type_is_reported_at_the_nested_path() -> None:
    obj = _scaled_object(minReplicaCount="one")
    (finding,) = crds.validate_custom_resources([obj])
    assert finding.path == "spec.minReplicaCount"
    assert "integer" in finding.message


def test_unknown_kind_in_a_pinned_group_is_a_finding() -> None:
    obj = {"apiVersion": "keda.sh/v1", "kind": "ScaledObject", "metadata": {"name": "x"}, "spec": {}}
    (finding,) = crds.validate_custom_resources([obj])
    assert "no pinned CRD serves" in finding.message and "v1alpha1/ScaledObject" in finding.message


def test_objects_of_core_and_unpinned_groups_are_left_to_other_validators() -> None:
    objs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"bogus": 1}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}},
    ]
    assert crds.validate_custom_resources(objs) == []


@pytest.mark.parametrize("port", [8000, "http"])
def test_int_or_string_fields_accept_both(port: int | str) -> None:
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "engines"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"targetPort": port}]},
    }
    assert crds.validate_custom_resources([obj]) == []


def test_metadata_needs_a_dns_name() -> None:
    obj = _scaled_object()
    obj["metadata"] = {"name": "Bad_Name"}
    (finding,) = crds.validate_custom_resources([obj])
    assert finding.path == "metadata.name"


def test_structural_conversion_keeps_preserve_unknown_fields_open_and_closes_the_rest() -> None:
    schema = crds._to_jsonschema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "port": {"x-kubernetes-int-or-string": True},
                    },
                }
            },
        }
    )
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert "additionalProperties" not in spec["properties"]["open"]
    assert spec["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]


def test_cli_validate_exits_1_and_prints_the_finding(tmp_path, capsys) -> None:
    from llmops.cli import main

    bad = tmp_path / "so.yaml"
    bad.write_text("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: d}, triggers: [], maxReplicas: 3}\n")
    assert main(["crds", "validate", str(bad)]) == 1
    assert "maxReplicas" in capsys.readouterr().out
    good = tmp_path / "ok.yaml"
    good.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + yaml_scaled_object())
    assert main(["crds", "validate", str(good)]) == 0


def test_cli_list_names_every_pin(capsys) -> None:
    from llmops.cli import main

    assert main(["crds", "list"]) == 0
    out = capsys.readouterr().out
    assert "keda: github.com/kedacore/keda/v2@" in out and "gateway.networking.k8s.io: " in out


def yaml_scaled_object() -> str:
    import yaml

    return yaml.safe_dump(_scaled_object())


def _http_scaled_object(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "http.keda.sh/v1alpha1", "kind": "HTTPScaledObject", "metadata": {"name": "chat"},
            "spec": spec}  # fmt: skip


def test_http_add_on_pin_serves_http_scaled_object_from_the_same_version_as_the_add_on_tool() -> None:
    from llmops import tools

    (pin,) = [p for p in crds.load_pins() if p.name == "keda-http-add-on"]
    tool = tools.load_specs()["keda-http-add-on"]
    assert (pin.module, pin.version) == (tool.get("module"), tool.version)
    assert "http.keda.sh" in crds.target_groups()
    assert crds.kinds_by_group()["http.keda.sh"] == ["HTTPScaledObject"]


def test_http_scaled_object_with_a_target_service_and_port_has_no_findings() -> None:
    obj = _http_scaled_object(hosts=["chat.example"], scaleTargetRef={"name": "chat", "service": "chat", "port": 8000},
                              replicas={"min": 0, "max": 4}, scalingMetric={"concurrency": {"targetValue": 4}})
    assert crds.validate_custom_resources([obj]) == []


def test_http_scaled_object_without_scale_target_ref_is_a_finding() -> None:
    (finding,) = crds.validate_custom_resources([_http_scaled_object(hosts=["chat.example"])])
    assert finding.path == "spec" and "scaleTargetRef" in finding.message


def test_http_scaled_object_target_without_a_service_is_a_finding_at_its_path() -> None:
    (finding,) = crds.validate_custom_resources([_http_scaled_object(scaleTargetRef={"name": "chat", "port": 8000})])
    assert finding.path == "spec.scaleTargetRef" and "service" in finding.message
