"""Which kubeconfig the harness talks to when the caller names none.

Shared by the simulator endpoints (ready replicas) and the load-test target
resolver; it sits below both so neither imports the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolve() -> str | None:
    """The local cluster's kubeconfig if it exists, else ``$KUBECONFIG``, else ``~/.kube/config`` if present.

    The local cluster is ``$LLMOPS_CLUSTER`` when set (as the test tiers name theirs), else the default one.
    """
    from llmops import cluster  # deferred: cluster pulls the toolchain module

    local = cluster.kubeconfig_path(os.environ.get("LLMOPS_CLUSTER") or cluster.DEFAULT_NAME)
    if local.exists():
        return str(local)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None
