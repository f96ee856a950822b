"""Small accessors shared by the vllm chart tests (no assertions copied from templates)."""

from __future__ import annotations

from typing import Any

from llmops.validate import render


def deployments(manifests: list[render.Manifest]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render.find(manifests, "Deployment")}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def engine(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    return next(c for c in containers if c["name"] == "engine")


def flag_values(args: list[str]) -> dict[str, list[str]]:
    """--flag v1 v2 --other -> {"--flag": ["v1", "v2"], "--other": []}."""
    out: dict[str, list[str]] = {}
    current = ""
    for a in args:
        if a.startswith("--"):
            current = a
            out.setdefault(current, [])
        elif current:
            out[current].append(a)
    return out


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
