"""`cluster up` never tears down a real node that another cache runs under the same cluster name.

Two checkouts with their own ``LLMOPS_CACHE`` can both ask for cluster
``llmops``; its node's network namespace (``<name>-node``) is host-wide. A
cache that has no cluster of that name used to take a live namespace for a
killed run's leftovers and stop it. Here a live process holds the namespace
and a cache without the cluster asks for it: refused, namespace and process
untouched. Needs root and ``ip netns`` (as the real node does); starts no cluster.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import cluster, poll
from llmops.cluster import node
from llmops.errors import LlmopsError

NAME = "llmops-foreign"
NETNS = f"{NAME}-node"
# A block no other tier uses: should the check ever regress, nothing collides with the CI cluster's ports.
PORT_BASE = 16070


@pytest.fixture()
def foreign_node() -> Iterator[subprocess.Popen[bytes]]:
    if node.netns_exists(NETNS):
        pytest.fail(f"network namespace {NETNS} exists before the test; `ip netns del {NETNS}`")
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    proc = subprocess.Popen(["ip", "netns", "exec", NETNS, "sleep", "300"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
        subprocess.run(["ip", "netns", "del", NETNS], check=False)


def test_up_refuses_a_name_whose_node_namespace_another_cache_runs(foreign_node: subprocess.Popen[bytes], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    poll.until("the stand-in node process in its namespace", lambda: node.netns_pids(NETNS), timeout=10, interval=0.1)
    with pytest.raises(LlmopsError) as err:
        cluster.up(NAME, "local", port_base=PORT_BASE, real_nodes=1, install_crds=False)
    message = str(err.value)
    assert f"network namespace {NETNS} is in use" in message and "has no cluster llmops-foreign" in message, message
    assert foreign_node.poll() is None, "the other cache's node process was stopped"
    assert node.netns_exists(NETNS)
    assert not cluster.cluster_dir(NAME).exists()
