"""A replica killed in the middle of a steady load: the router retries on the
other replica (client error ratio at most 1%) and its health checks take the
dead replica out. Ports 18303-18305 and 18308.

In IGW mode vllm-router 0.1.17 gives every worker its default health config
(3 failed checks, 5 s timeout) whatever the flags say; only the check
interval comes from --health-check-interval-secs. So the bound is three
intervals, not one (read from core/worker.rs and measured here)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import procs
from llmops.engine.router import HostRouter, request, start_simulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("router-host")]

ROUTER_PORT, METRICS_PORT = 18303, 18308
SIMS = (18304, 18305)
HEALTH_INTERVAL_S = 2
CLIENTS = 6
LOAD_S = 8.0
KILL_AFTER_S = 3.0
IGW_FAILURE_THRESHOLD = 3  # fixed for IGW-registered workers in 0.1.17


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[HostRouter, list]]:  # type: ignore[type-arg]
    sims = [start_simulator(port, "chat", tmp_path / f"sim-{port}.log", "--max-num-seqs", "32") for port in SIMS]
    router = HostRouter(
        ROUTER_PORT, METRICS_PORT, policy="power_of_two", log=tmp_path / "router.log",
        extra_args=["--health-check-interval-secs", str(HEALTH_INTERVAL_S), "--health-check-timeout-secs", "1",
                    "--health-failure-threshold", "1", "--retry-max-retries", "3", "--retry-initial-backoff-ms", "20"],
    )  # fmt: skip
    try:
        router.start()
        for port in SIMS:
            router.add_worker(f"http://127.0.0.1:{port}")
        yield router, sims
    finally:
        router.stop()
        for sim in sims:
            procs.stop_process(sim, 5)


def test_killing_a_replica_mid_load_costs_at_most_one_percent_and_the_router_drops_it(pair: tuple[HostRouter, list]) -> None:  # type: ignore[type-arg]
    router, sims = pair
    results: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + LOAD_S

    def client() -> None:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
        while time.monotonic() < stop:
            try:
                status, _ = request(f"{router.url}/v1/chat/completions", body, timeout=10)
            except OSError:
                status = 0
            with lock:
                results.append(status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(KILL_AFTER_S)
    sims[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    dead = f"http://127.0.0.1:{SIMS[1]}"
    dropped_after = None
    while time.monotonic() - killed_at < IGW_FAILURE_THRESHOLD * HEALTH_INTERVAL_S + 3:
        worker = next((w for w in router.workers() if w["url"] == dead), None)
        if worker is None or not worker["is_healthy"]:
            dropped_after = time.monotonic() - killed_at
            break
        time.sleep(0.2)
    for t in threads:
        t.join()
    failed = sum(1 for s in results if s != 200)
    assert len(results) > 100, f"too little load to judge: {len(results)} requests"
    assert failed / len(results) <= 0.01, f"{failed} of {len(results)} requests failed: {sorted(set(results))}"
    assert dropped_after is not None, f"the router still counts {dead} as healthy {IGW_FAILURE_THRESHOLD * HEALTH_INTERVAL_S + 3} s after it died"
    assert dropped_after <= IGW_FAILURE_THRESHOLD * HEALTH_INTERVAL_S + 1.5
