"""Chart READMEs are generated from values.yaml comments and kept in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops import chartdocs, paths

OWN_CHARTS = ("common", "vllm", "llmops-stack", "gpu", "autoscaling", "observability", "ingress", "network-policies", "router")


@pytest.mark.parametrize("chart", OWN_CHARTS)
def test_serving_charts_have_a_generated_readme(chart: str) -> None:
    assert (paths.CHARTS_DIR / chart / "README.md").is_file(), f"run `make docs` for charts/{chart}"


def test_no_chart_readme_drifts_from_its_values_comments() -> None:
    # A chart still without any README (a subchart being written by another
    # engineer) is reported by its own README test, not here.
    stale = [p for p in chartdocs.drifted() if (paths.REPO_ROOT / p).exists()]
    assert stale == [], "stale chart README(s); run `make docs` and commit"


def test_drift_check_notices_a_changed_value_comment(tmp_path: Path) -> None:
    copy = tmp_path / "charts"
    shutil.copytree(paths.CHARTS_DIR, copy, ignore=shutil.ignore_patterns("*.tgz", "charts"))
    values = copy / "vllm" / "values.yaml"
    text = values.read_text()
    first_doc = text.index("# -- ") + len("# -- ")
    values.write_text(text[:first_doc] + "Edited: " + text[first_doc:])
    assert chartdocs.drifted(copy) == ["charts/vllm/README.md"]
