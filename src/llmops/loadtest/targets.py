"""Where the load goes: model name -> base URLs.

- ``--url URL``: any OpenAI-compatible endpoint; model names from ``--model`` or ``GET /v1/models``.
- ``--release NAME -n NS``: the release's engine Services (label
  ``app.kubernetes.io/instance=NAME``, ``app.kubernetes.io/component=engine``,
  model from ``llmops.io/model``) are read through the Kubernetes API. Pods
  on kwok nodes run nothing, so such a model maps to the host simulators
  registered for that release (:mod:`llmops.cluster.endpoints` registry); pods on the
  local cluster's real node are reached through the Service's ClusterIP,
  which the host routes into the node (kube-proxy does the rest); elsewhere
  (kind) a ``kubectl port-forward`` to the Service's ``http`` port is opened
  on a local port of 18000-18099 and closed afterwards.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from llmops import poll, tools
from llmops.cluster import endpoints
from llmops.cluster.kubeconfig import resolve as kubeconfig
from llmops.errors import LlmopsError

ENGINE_SELECTOR = "app.kubernetes.io/component=engine"
MODEL_LABEL = "llmops.io/model"
PORT_FORWARD_TIMEOUT_S = 20.0


def models_at(url: str, api_key: str = "", timeout: float = 10.0, *, insecure: bool = False) -> list[str]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    req = urllib.request.Request(url.rstrip("/") + "/v1/models", headers=headers)
    ctx = ssl._create_unverified_context() if insecure else None  # noqa: S323 - the user asked for --insecure
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310 - user-given endpoint
            data = json.load(resp)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        hint = " (self-signed certificate? pass --insecure)" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ""
        raise LlmopsError(f"cannot list models at {url}/v1/models ({exc}){hint}; is the endpoint up? or pass --model") from exc
    models = [str(m["id"]) for m in data.get("data", []) if "id" in m]
    if not models:
        raise LlmopsError(f"{url}/v1/models lists no model; pass --model")
    return models


def from_url(url: str, models: Sequence[str] = (), api_key: str = "", *, insecure: bool = False) -> dict[str, list[str]]:
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    names = list(models) or models_at(base, api_key, insecure=insecure)
    return {m: [base] for m in names}


def engine_services(release: str, namespace: str) -> list[dict[str, Any]]:
    """``[{"name", "model", "port"}]`` for the release's engine Services, from the API server."""
    config = kubeconfig()
    if config is None:
        raise LlmopsError("no kubeconfig: start the local cluster (`llmops cluster up`) or set KUBECONFIG")
    from kubernetes import client
    from kubernetes import config as kconfig

    try:
        api = client.CoreV1Api(kconfig.new_client_from_config(config_file=config))
        items = api.list_namespaced_service(
            namespace, label_selector=f"app.kubernetes.io/instance={release},{ENGINE_SELECTOR}", _request_timeout=10
        ).items
    except Exception as exc:  # noqa: BLE001 - any API failure gets the same advice
        raise LlmopsError(f"cannot list Services of release {release} in {namespace} via {config}: {exc}") from exc
    out: list[dict[str, Any]] = []
    for svc in items:
        labels = svc.metadata.labels or {}
        port = next((p.port for p in svc.spec.ports or [] if p.name == "http"), None)
        cluster_ip = svc.spec.cluster_ip if svc.spec.cluster_ip not in (None, "", "None") else None
        out.append({"name": svc.metadata.name, "model": labels.get(MODEL_LABEL, svc.metadata.name), "port": port,
                    "cluster_ip": cluster_ip})
    if not out:
        raise LlmopsError(
            f"release {release} in namespace {namespace} has no engine Service "
            f"(selector app.kubernetes.io/instance={release},{ENGINE_SELECTOR}); is it installed?"
        )
    return out


@contextmanager
def from_release(release: str, namespace: str) -> Iterator[dict[str, list[str]]]:
    """Resolve a release to targets; port-forwards (if any) live as long as the context."""
    services = engine_services(release, namespace)
    local = endpoints.lookup(release, namespace)
    targets: dict[str, list[str]] = {}
    forwards: list[subprocess.Popen[bytes]] = []
    try:
        for svc in services:
            if svc["model"] in local:
                for served, urls in local[svc["model"]].items():
                    targets.setdefault(served, []).extend(urls)
                continue
            if svc["port"] is None:
                raise LlmopsError(f"Service {namespace}/{svc['name']} has no port named http")
            routed = _through_service(svc)
            if routed:
                for served, url in routed.items():
                    targets.setdefault(served, []).append(url)
                continue
            url, proc = _port_forward(namespace, svc["name"], svc["port"])
            forwards.append(proc)
            try:
                served_names = models_at(url)
            except LlmopsError as exc:
                raise LlmopsError(
                    f"Service {namespace}/{svc['name']} (model {svc['model']}) did not answer through a kubectl "
                    f"port-forward ({exc}). On the local (kwok) provider pods run nothing: start the release's "
                    f"endpoints first with `llmops endpoints up --release {release} -n {namespace}`"
                ) from exc
            for served in served_names:
                targets.setdefault(served, []).append(url)
        yield targets
    finally:
        for proc in forwards:
            proc.terminate()
            proc.wait(timeout=10)


def _through_service(svc: dict[str, Any]) -> dict[str, str]:
    """Served model -> the Service's own ClusterIP URL, when this host routes to it.

    The local cluster's real node routes its Service range through a veth
    (llmops.cluster.node): requests then cross kube-proxy's rules to the pods like any
    in-cluster client's. Elsewhere the ClusterIP does not answer and the
    caller falls back to a port-forward.
    """
    if not svc.get("cluster_ip"):
        return {}
    url = f"http://{svc['cluster_ip']}:{svc['port']}"
    try:
        return {served: url for served in models_at(url, timeout=3)}
    except LlmopsError:
        return {}


def _port_forward(namespace: str, service: str, port: int) -> tuple[str, subprocess.Popen[bytes]]:
    local = next((p for p in endpoints.PORT_RANGE if endpoints.port_is_free(p)), None)
    if local is None:
        raise LlmopsError("no free local port in 18000-18099 for a port-forward")
    argv = [str(tools.require("kubectl")), "port-forward", "-n", namespace, f"svc/{service}", f"{local}:{port}",
            "--address", "127.0.0.1"]  # fmt: skip
    env = dict(os.environ)
    if (cfg := kubeconfig()) is not None:
        env["KUBECONFIG"] = cfg
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    def listening() -> bool:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise LlmopsError(
                f"kubectl port-forward to {namespace}/{service} failed: {err.strip()}; on the local (kwok) "
                "provider start the release's endpoints first (`llmops endpoints up`)"
            )
        return not endpoints.port_is_free(local)

    try:
        poll.until(f"kubectl port-forward to {namespace}/{service} to listen on {local}", listening,
                   timeout=PORT_FORWARD_TIMEOUT_S, interval=0.1)
    except poll.PollTimeout:
        proc.terminate()
        raise
    return f"http://127.0.0.1:{local}", proc
