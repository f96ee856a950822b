"""Fixtures for load tests against real llm-d-inference-sim processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.cluster import endpoints

TTFT_MS = 100.0  # the issue: measured p50 within 10% of these
ITL_MS = 10.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry") / "endpoints.json"


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, registry: Path) -> Iterator[endpoints.EndpointManager]:
    """An endpoint manager whose simulators (and registry) are private to this module; stops them all."""
    with endpoints.EndpointManager(log_dir=tmp_path_factory.mktemp("sim-logs"), registry=registry) as mgr:
        yield mgr


@pytest.fixture(scope="module")
def simulator(manager: endpoints.EndpointManager) -> endpoints.Simulator:
    """One simulator at TTFT 100 ms / ITL 10 ms with room for every client of these tests."""
    config = endpoints.SimulatorConfig(model="e2e-model", ttft_ms=TTFT_MS, itl_ms=ITL_MS, max_num_seqs=128)
    return manager.start(config, group="e2e/latency")
