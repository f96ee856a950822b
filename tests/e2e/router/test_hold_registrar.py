"""The router chart's hold registrar (charts/router/files/hold_registrar.py) against the pinned vLLM Router.

The registrar runs beside the router in its pod and keeps the hold workers of
models at zero replicas (the KEDA HTTP add-on's interceptor) registered; the
router holds POST /workers registrations in memory only. Here the chart's own
file runs against a real router on loopback: it registers every model id the
file lists, leaves workers it did not add alone, registers them again after a
router restart, and removes what the file no longer lists. The workers'
URLs need not answer for this (nothing is routed). Ports 18306-18307.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import paths
from llmops.engine.router import HostRouter

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("router-host")]

ROUTER_PORT, METRICS_PORT = 18306, 18307  # router host range 18300-18319
SCRIPT = paths.CHARTS_DIR / "router" / "files" / "hold_registrar.py"
HOLD = "http://as-idle-hold.ns.svc:8080"
OTHER = "http://as-busy-0.ns.svc:8000"


@pytest.fixture()
def router(tmp_path: Path) -> Iterator[HostRouter]:
    r = HostRouter(ROUTER_PORT, METRICS_PORT, policy="cache_aware", log=tmp_path / "router.log").start()
    try:
        yield r
    finally:
        r.stop()


def _run_once(router: HostRouter, workers: Path) -> subprocess.CompletedProcess[str]:
    env = {"ROUTER_URL": router.url, "WORKERS_FILE": str(workers), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(SCRIPT), "--once"], env=env, capture_output=True, text=True, timeout=30)


def _urls(router: HostRouter) -> set[str]:
    return {w["url"] for w in router.workers()}


def test_registers_every_listed_model_again_after_a_restart_and_removes_unlisted(router: HostRouter,
                                                                                 tmp_path: Path) -> None:
    workers = tmp_path / "workers.json"
    workers.write_text(json.dumps([{"url": HOLD, "model_id": "idle-llm"}, {"url": HOLD, "model_id": "idle-lora"}]))
    router.add_worker(OTHER, "busy-llm")  # a worker the registrar did not add (pod discovery's)

    done = _run_once(router, workers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _urls(router) == {HOLD, OTHER}
    assert router.models() == ["busy-llm", "idle-llm", "idle-lora"]
    assert _run_once(router, workers).stdout == "", "a second round re-registered workers that were there"

    # The router restarts (its registrations are gone): the next round adds them again.
    router.stop()
    router.start()
    assert _urls(router) == set()
    assert _run_once(router, workers).returncode == 0
    assert _urls(router) == {HOLD} and router.models() == ["idle-llm", "idle-lora"]

    # An upgrade stops holding the model: its hold worker goes, others stay.
    router.add_worker(OTHER, "busy-llm")
    workers.write_text("[]")
    done = _run_once(router, workers)
    assert done.returncode == 0 and "removed" in done.stdout, done.stdout + done.stderr
    assert _urls(router) == {OTHER}


def test_missing_file_registers_nothing_and_an_unreachable_router_fails_the_round(router: HostRouter,
                                                                                  tmp_path: Path) -> None:
    assert _run_once(router, tmp_path / "absent.json").returncode == 0
    assert _urls(router) == set()
    router.stop()
    done = _run_once(router, tmp_path / "absent.json")
    assert done.returncode == 1 and "hold registrar:" in done.stdout


def test_stops_on_sigterm_as_pid_1_of_its_container(tmp_path: Path) -> None:
    """In its container the registrar is PID 1, and the kernel drops SIGTERM for a PID 1 without a
    handler: the router pod then waited its whole grace period for SIGKILL on every rollout and
    uninstall. Run as PID 1 of a new PID namespace (as the container runtime does), it stops at once."""
    env = {"ROUTER_URL": "http://127.0.0.1:9", "WORKERS_FILE": str(tmp_path / "absent.json"),
           "INTERVAL_SECONDS": "1", "PATH": "/usr/bin:/bin"}  # fmt: skip
    outer = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sys.executable, str(SCRIPT)], env=env)
    try:
        inner = None
        deadline = time.monotonic() + 10
        while inner is None and time.monotonic() < deadline:
            kids = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
            inner = int(kids[0]) if kids else None
            time.sleep(0.1)
        assert inner is not None, "the registrar did not start under unshare"
        ns_pid = [ln for ln in Path(f"/proc/{inner}/status").read_text().splitlines() if ln.startswith("NSpid:")][0]
        assert ns_pid.split()[-1] == "1", f"not PID 1 of its namespace: {ns_pid}"
        time.sleep(1.5)  # a round or two, as in the pod
        started = time.monotonic()
        os.kill(inner, signal.SIGTERM)
        outer.wait(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait(5)
