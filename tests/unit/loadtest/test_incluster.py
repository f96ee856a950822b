"""`llmops loadtest --in-cluster`: the master's summary line, the refusals that come before any pod starts."""

from __future__ import annotations

import json

import pytest

from llmops.cli import main
from llmops.errors import LlmopsError
from llmops.loadtest import incluster, stats


def test_summary_is_the_last_marked_line_of_the_master_log() -> None:
    first = stats.summarize([stats.Sample(start=0.0, model="m", api="chat", stream=True, status=200, ok=True, e2el_ms=10.0, ttft_ms=5.0)])
    last = stats.summarize([])
    log = "\n".join(["[   10s] clients=4 completed=3 failed=0 rps=0.3",
                     incluster.SUMMARY_MARKER + json.dumps({"summary": first, "samples": 1}),
                     "some Locust shutdown noise",
                     incluster.SUMMARY_MARKER + json.dumps({"summary": last, "samples": 0})])
    assert incluster.parse_summary(log)["requests"] == 0


def test_a_master_log_without_a_summary_is_an_error_quoting_the_log_tail() -> None:
    with pytest.raises(LlmopsError, match=r"(?s)printed no summary line.*connection refused"):
        incluster.parse_summary("starting\nurllib.error.URLError: connection refused\n")


def test_the_summary_line_marker_is_the_one_the_locustfile_prints() -> None:
    from llmops import paths

    assert f'SUMMARY_MARKER = "{incluster.SUMMARY_MARKER}"' in (paths.REPO_ROOT / "loadtests" / "locustfile.py").read_text()


def test_in_cluster_without_a_release_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "--url", "http://127.0.0.1:1", "--in-cluster"]) == 2
    assert "--in-cluster runs next to a release" in capsys.readouterr().err


def test_a_sweep_is_refused_in_the_cluster() -> None:
    with pytest.raises(LlmopsError, match="sweep"):
        incluster._profile("sweep", {})
