"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from llmops import paths
from llmops.validate import render

RenderFn = Callable[..., list[render.Manifest]]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build every chart's local dependencies once, before any test renders or lints.

    A fresh clone has empty charts/<chart>/charts/ folders; tests that call
    helm directly (lint, ct) would otherwise depend on test order.
    """
    for chart_yaml in sorted(paths.CHARTS_DIR.glob("*/Chart.yaml")):
        render.ensure_dependencies(chart_yaml.parent)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/unit are the `unit` tier unless they say otherwise."""
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(paths.REPO_ROOT / "tests")
        tier = rel.parts[0]
        if tier in {"unit", "cluster", "e2e", "engine"} and not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(params=render.HELM_VERSIONS)
def helm(request: pytest.FixtureRequest) -> str:
    """The install name of each pinned Helm major version: every test using it runs twice."""
    return str(request.param)


@pytest.fixture
def render_chart(helm: str) -> RenderFn:
    """Render any chart in charts/ with values files under the Helm version of this test instance.

    Usage: ``render_chart("vllm", [values_file], set_values={...})`` returns
    the list of :class:`llmops.validate.render.Manifest`.
    """

    def _render(chart: str | Path, values: Sequence[str | Path] = (), **kwargs: Any) -> list[render.Manifest]:
        return render.render(chart, values, helm=helm, **kwargs)

    return _render


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return paths.REPO_ROOT
