"""Checks across rendered objects that no single-object schema can express.

A Service whose selector matches no pod template, a ServiceMonitor pointing
at a port name nobody exposes or a ScaledObject aimed at a Deployment that
was renamed all render and apply cleanly and fail only at run time, silently.
Every check here looks at one environment's whole render.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.validate.render import Manifest

WORKLOAD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass",
    "RuntimeClass", "CustomResourceDefinition", "APIService", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ClusterIssuer", "ClusterPolicy", "ClusterTriggerAuthentication",
    "IngressClass", "GatewayClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}


@dataclass(frozen=True, order=True)
class Finding:
    check: str
    kind: str
    namespace: str
    name: str
    message: str
    source: str = ""

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        where = f" [{self.source}]" if self.source else ""
        return f"{self.resource}: {self.message} ({self.check}){where}"


@dataclass(frozen=True)
class PodTemplate:
    """A pod template (or bare Pod) and the object that owns it."""

    owner: Manifest
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers") or [])

    def port_names(self) -> set[str]:
        return {str(p["name"]) for c in self.containers for p in c.get("ports") or [] if p.get("name")}

    def port_numbers(self) -> set[int]:
        return {int(p["containerPort"]) for c in self.containers for p in c.get("ports") or [] if "containerPort" in p}

    def has_port(self, port: Any) -> bool:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port) in self.port_numbers()
        return str(port) in self.port_names()


def namespace_of(m: Manifest, default: str) -> str:
    if m.kind in CLUSTER_SCOPED:
        return ""
    return str(m.obj.get("metadata", {}).get("namespace") or default)


def _template_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec", {}).get("template")
    if kind in WORKLOAD_KINDS:
        return (obj.get("spec") or {}).get("template")
    return None


def pod_templates(manifests: Iterable[Manifest], namespace: str) -> list[PodTemplate]:
    out = []
    for m in manifests:
        if m.kind not in WORKLOAD_KINDS:
            continue
        tpl = _template_of(m.obj)
        if not isinstance(tpl, dict):
            continue
        labels = {str(k): str(v) for k, v in ((tpl.get("metadata") or {}).get("labels") or {}).items()}
        out.append(PodTemplate(m, namespace_of(m, namespace), labels, tpl.get("spec") or {}))
    return out


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels + matchExpressions); an empty selector matches all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = str(expr.get("key")), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_keys(selector: dict[str, Any]) -> set[str]:
    return {str(k) for k in selector.get("matchLabels") or {}} | {
        str(e.get("key")) for e in selector.get("matchExpressions") or []
    }


def foreign(selector: dict[str, Any] | None, known_keys: set[str]) -> bool:
    """True when SELECTOR uses no label key that this render puts on anything of the kind it selects.

    Such a selector aims at objects that operators or other releases create at
    run time (cert-manager's ACME solver pods, the GPU Operator's DCGM exporter
    Service); their absence from the render is expected, not a bug. A selector
    that mixes our keys with a wrong one is still judged.
    """
    keys = _selector_keys(selector or {})
    return bool(keys) and not (keys & known_keys)


def _pod_label_keys(templates: Sequence[PodTemplate]) -> set[str]:
    return {k for t in templates for k in t.labels}


def _finding(check: str, m: Manifest, ns: str, message: str) -> Finding:
    return Finding(check, m.kind, ns, m.name, message, m.source)


def _fmt_selector(sel: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or sel).items()) if k != "matchExpressions"]
    parts += [f"{e.get('key')} {e.get('operator')} {e.get('values', '')}" for e in sel.get("matchExpressions") or []]
    return ", ".join(parts) or "(empty)"


def check_duplicates(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    seen: dict[tuple[str, str, str, str], Manifest] = {}
    out = []
    for m in manifests:
        group = str(m.obj.get("apiVersion", "")).rpartition("/")[0]
        ns = namespace_of(m, namespace)
        key = (group, m.kind, ns, m.name)
        if key in seen:
            out.append(_finding("duplicate-object", m, ns,
                                f"rendered twice (also by {seen[key].source or 'another template'}); "
                                "the second apply overwrites the first"))
        else:
            seen[key] = m
    return out


def check_services(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    templates = pod_templates(manifests, namespace)
    out = []
    for m in manifests:
        if m.kind != "Service":
            continue
        spec = m.obj.get("spec") or {}
        selector = spec.get("selector")
        if spec.get("type") == "ExternalName" or not selector:
            continue  # no selector: endpoints are managed elsewhere on purpose
        ns = namespace_of(m, namespace)
        matched = [t for t in templates if t.namespace == ns and selector_matches({"matchLabels": selector}, t.labels)]
        if not matched and foreign({"matchLabels": selector}, _pod_label_keys(templates)):
            continue
        if not matched:
            out.append(_finding("service-selector", m, ns, f"selector {_fmt_selector(selector)} matches no pod template"))
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str) and not target.isdigit() and not any(t.has_port(target) for t in matched):
                out.append(_finding("service-port", m, ns,
                                    f"port {port.get('name', port.get('port'))} targets port name '{target}' "
                                    f"that no selected container exposes"))
    return out


def check_monitors(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    services = [m for m in manifests if m.kind == "Service"]
    templates = pod_templates(manifests, namespace)
    out = []
    for m in manifests:
        if m.kind not in {"ServiceMonitor", "PodMonitor"}:
            continue
        spec = m.obj.get("spec") or {}
        ns = namespace_of(m, namespace)
        nsel = spec.get("namespaceSelector") or {}
        if nsel.get("any"):
            namespaces = None
        else:
            namespaces = set(nsel.get("matchNames") or [ns])
        selector = spec.get("selector") or {}
        rendered_namespaces = {namespace_of(x, namespace) for x in manifests}
        if namespaces is not None and not (namespaces & rendered_namespaces):
            continue  # it watches namespaces this release renders nothing into
        if m.kind == "ServiceMonitor":
            targets = [
                s for s in services
                if (namespaces is None or namespace_of(s, namespace) in namespaces)
                and selector_matches(selector, {str(k): str(v) for k, v in (s.obj["metadata"].get("labels") or {}).items()})
            ]
            service_keys = {str(k) for s in services for k in (s.obj["metadata"].get("labels") or {})}
            if not targets and foreign(selector, service_keys):
                continue
            if not targets:
                out.append(_finding("monitor-selector", m, ns, f"selector {_fmt_selector(selector)} matches no Service"))
                continue
            for ep in spec.get("endpoints") or []:
                port = ep.get("port")
                if port is None:
                    continue
                names = {str(p.get("name")) for s in targets for p in (s.obj.get("spec") or {}).get("ports") or []}
                if str(port) not in names:
                    out.append(_finding("monitor-port", m, ns,
                                        f"endpoint port '{port}' is not a port name of the selected Service(s) "
                                        f"(they have: {', '.join(sorted(names)) or 'none'})"))
        else:
            pods = [
                t for t in templates
                if (namespaces is None or t.namespace in namespaces) and selector_matches(selector, t.labels)
            ]
            if not pods and foreign(selector, _pod_label_keys(templates)):
                continue
            if not pods:
                out.append(_finding("monitor-selector", m, ns, f"selector {_fmt_selector(selector)} matches no pod template"))
                continue
            for ep in spec.get("podMetricsEndpoints") or []:
                port = ep.get("port", ep.get("portNumber"))
                if port is not None and not any(t.has_port(port) for t in pods):
                    names = sorted(set().union(*(t.port_names() for t in pods)))
                    out.append(_finding("monitor-port", m, ns,
                                        f"podMetricsEndpoints port '{port}' is not exposed by the selected pods "
                                        f"(they have: {', '.join(names) or 'none'})"))
    return out


def check_scale_targets(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    index = {(namespace_of(m, namespace), m.kind, m.name) for m in manifests}
    out = []
    targeted: dict[tuple[str, str, str], Manifest] = {}
    for m in manifests:
        if m.kind not in {"ScaledObject", "HorizontalPodAutoscaler"}:
            continue
        ref = (m.obj.get("spec") or {}).get("scaleTargetRef") or {}
        kind = str(ref.get("kind") or "Deployment")
        ns = namespace_of(m, namespace)
        key = (ns, kind, str(ref.get("name")))
        if key not in index:
            out.append(_finding("scale-target", m, ns, f"scaleTargetRef {kind}/{ref.get('name')} is not rendered"))
            continue
        if key in targeted and {targeted[key].kind, m.kind} == {"ScaledObject", "HorizontalPodAutoscaler"}:
            out.append(_finding("scale-target", m, ns,
                                f"{kind}/{ref.get('name')} is scaled by both {targeted[key].kind}/{targeted[key].name} "
                                f"and this object; the two autoscalers fight"))
        targeted[key] = m
    return out


def check_pdbs(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    templates = pod_templates(manifests, namespace)
    out = []
    for m in manifests:
        if m.kind != "PodDisruptionBudget":
            continue
        ns = namespace_of(m, namespace)
        selector = (m.obj.get("spec") or {}).get("selector") or {}
        if foreign(selector, _pod_label_keys(templates)):
            continue
        if not any(t.namespace == ns and selector_matches(selector, t.labels) for t in templates):
            out.append(_finding("pdb-selector", m, ns, f"selector {_fmt_selector(selector)} matches no pod template"))
    return out


def check_network_policies(manifests: Sequence[Manifest], namespace: str) -> list[Finding]:
    templates = pod_templates(manifests, namespace)
    out = []
    for m in manifests:
        if m.kind != "NetworkPolicy":
            continue
        ns = namespace_of(m, namespace)
        spec = m.obj.get("spec") or {}
        selector = spec.get("podSelector") or {}
        pods = [t for t in templates if t.namespace == ns and selector_matches(selector, t.labels)]
        if selector and not pods and foreign(selector, _pod_label_keys(templates)):
            continue
        if selector and not pods:
            out.append(_finding("networkpolicy-selector", m, ns,
                                f"podSelector {_fmt_selector(selector)} selects no rendered pod"))
            continue
        for i, rule in enumerate(spec.get("ingress") or []):
            for port in rule.get("ports") or []:
                p = port.get("port")
                if p is None or port.get("endPort") is not None:
                    continue
                if pods and not any(t.has_port(p) for t in pods):
                    out.append(_finding("networkpolicy-port", m, ns,
                                        f"ingress[{i}] allows port {p!r}, which no selected pod exposes"))
        for i, rule in enumerate(spec.get("egress") or []):
            peers = rule.get("to") or []
            # Only in-namespace pod peers can be checked: other destinations are outside the render.
            if not peers or any(set(peer) != {"podSelector"} for peer in peers):
                continue
            dests = [t for t in templates if t.namespace == ns and any(selector_matches(p["podSelector"], t.labels) for p in peers)]
            if not dests and all(foreign(p["podSelector"], _pod_label_keys(templates)) for p in peers):
                continue
            if not dests:
                out.append(_finding("networkpolicy-selector", m, ns, f"egress[{i}] peers select no rendered pod"))
                continue
            for port in rule.get("ports") or []:
                p = port.get("port")
                if p is not None and port.get("endPort") is None and not any(t.has_port(p) for t in dests):
                    out.append(_finding("networkpolicy-port", m, ns,
                                        f"egress[{i}] allows port {p!r}, which no destination pod exposes"))
    return out


CHECKS = (
    check_duplicates,
    check_services,
    check_monitors,
    check_scale_targets,
    check_pdbs,
    check_network_policies,
)


def crosscheck(manifests: Sequence[Manifest], namespace: str = "llmops") -> list[Finding]:
    """Every cross-object finding for one environment's render (namespace = the release namespace)."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(manifests, namespace))
    return sorted(findings)
