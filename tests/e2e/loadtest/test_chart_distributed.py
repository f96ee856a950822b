"""charts/loadtest as rendered, run for real: one Locust master and two workers against a simulator.

kwok pods run nothing and there is no image registry here, so the rendered
master and worker containers are run as local processes instead: their
args and env exactly as rendered, the code and config ConfigMaps written
out at the paths the pods mount them, and only what a pod network gives for
free replaced (the master Service name becomes 127.0.0.1 and port 5557 one
of this harness's ports).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from llmops.cluster import endpoints
from llmops.validate import render



def _pod(manifests: list[render.Manifest], component: str) -> dict[str, Any]:
    (job,) = [o for o in render.find(manifests, "Job") if o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return dict(job["spec"]["template"]["spec"])


def _materialize(manifests: list[render.Manifest], pod: dict[str, Any], root: Path) -> dict[str, Path]:
    """Write the ConfigMap volumes where the container mounts them (under root); mountPath -> local dir."""
    configmaps = {o["metadata"]["name"]: o["data"] for o in render.find(manifests, "ConfigMap")}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    mapping: dict[str, Path] = {}
    for vol in pod["volumes"]:
        if "configMap" not in vol:
            continue
        local = root / mounts[vol["name"]].lstrip("/")
        data = configmaps[vol["configMap"]["name"]]
        items = vol["configMap"].get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            dest = local / item["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(data[item["key"]])
        mapping[mounts[vol["name"]]] = local
    mapping["/tmp"] = root / "tmp"
    mapping["/tmp"].mkdir(exist_ok=True)
    return mapping


def _localize(value: str, mapping: dict[str, Path]) -> str:
    for mount, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        if value == mount or value.startswith(mount + "/"):
            return str(local) + value[len(mount):]
    return value


def _command(pod: dict[str, Any], mapping: dict[str, Path], fullname: str, port: str) -> tuple[list[str], dict[str, str]]:
    container = pod["containers"][0]
    args = [_localize(a, mapping) for a in container["args"]]
    args = ["127.0.0.1" if a == f"{fullname}-master" else a for a in args]
    if "--master-port" in args:
        args[args.index("--master-port") + 1] = port
    if "--master" in args:
        args += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
    env = {e["name"]: _localize(e["value"], mapping) for e in container["env"] if "value" in e}
    # the image's PATH has locust and its Python; here that is the harness venv (never the repo's src)
    env["PATH"] = os.environ["PATH"]
    return [sys.executable, "-m", *container["command"], *args], env


def test_rendered_master_and_workers_run_the_profile_against_the_target(tmp_path: Path) -> None:
    with endpoints.EndpointManager(log_dir=tmp_path, registry=tmp_path / "r.json") as mgr:
        sim = mgr.start(endpoints.SimulatorConfig(model="dist", ttft_ms=20, itl_ms=2))
        values = {
            "target": {"url": sim.url},
            "worker": {"replicas": 2},
            "profile": {"name": "dist", "prompt_tokens": 16, "output_tokens": 8,
                        "load": {"shape": "concurrency", "users": 4, "duration": "4s"}},
        }  # fmt: skip
        manifests = render.render("loadtest", set_values=values, release="lt", namespace="ns")
        # simulators fill 18000-18099 from the bottom; the master takes a free port from the top
        port = str(next(p for p in reversed(endpoints.PORT_RANGE) if endpoints.port_is_free(p)))
        procs = []
        outputs = {}
        for component in ("worker", "worker", "master"):
            pod = _pod(manifests, component)
            root = tmp_path / f"{component}-{len(procs)}"
            mapping = _materialize(manifests, pod, root)
            argv, env = _command(pod, mapping, "lt-loadtest", port)
            out = root / "stdout"
            outputs[len(procs)] = out
            procs.append(subprocess.Popen(argv, env=env, cwd=root, stdout=out.open("w"), stderr=subprocess.STDOUT))
        try:
            codes = [p.wait(timeout=120) for p in reversed(procs)]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert codes == [0, 0, 0], [outputs[i].read_text()[-2000:] for i in outputs]
        master_out = outputs[2].read_text()
        start = re.search(r"^\[\s*$", master_out, re.M)  # `--json` prints the final stats after the log lines
        assert start, master_out[-2000:]
        stats = json.loads(master_out[start.start(): master_out.rindex("]") + 1])
        by_type = {s["method"]: s for s in stats}
        assert {"POST", "TTFT", "TPOT", "ITL"} <= set(by_type), sorted(by_type)
        assert by_type["POST"]["num_requests"] > 10 and by_type["POST"]["num_failures"] == 0
        assert by_type["TTFT"]["num_requests"] == by_type["POST"]["num_requests"]
        assert (tmp_path / "master-2" / "tmp" / "locust-report.html").stat().st_size > 0
