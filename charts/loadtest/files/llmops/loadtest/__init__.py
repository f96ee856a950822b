"""Load testing of OpenAI-compatible LLM endpoints with Locust: profiles, shapes, SLO gates, reports.

Modules: :mod:`~llmops.loadtest.sse` (stream parsing), :mod:`~llmops.loadtest.stats`
(exact percentiles, reference-tool metric names), :mod:`~llmops.loadtest.profiles`
(workloads), :mod:`~llmops.loadtest.shapes` (load over time), :mod:`~llmops.loadtest.slo`
(gates), :mod:`~llmops.loadtest.runner` (headless Locust subprocess),
:mod:`~llmops.loadtest.harness` (one test end to end), :mod:`~llmops.loadtest.report`,
:mod:`~llmops.loadtest.targets` (``--url`` / ``--release``) and
:mod:`~llmops.loadtest.demo` (the ``make demo`` step).
"""

from __future__ import annotations

import argparse


def demo_step(args: argparse.Namespace) -> str:
    """`llmops demo` step: simulators for values/local.yaml's models, the default profile, the report path."""
    from llmops.loadtest.demo import demo_step as step

    return step(args)
