"""Progress of long installs: periodic lines with elapsed/expected time and what the command is on."""

from __future__ import annotations

import sys
import re
from pathlib import Path

import pytest

from llmops import heartbeat, tools
from llmops.errors import ToolError


def test_silent_command_still_gets_heartbeat_lines_with_elapsed_expected_and_last_output(tmp_path: Path) -> None:
    lines: list[str] = []
    hb = heartbeat.Heartbeat("[2/7] etcd v3.6.11", lines.append, expected=125, source="x", interval=0.1)
    code = "import time; print('k8s.io/api/core/v1', flush=True); time.sleep(0.45)"
    out = hb.run([sys.executable, "-c", code], step="go build etcd", log=tmp_path / "log")
    assert out == "k8s.io/api/core/v1\n"
    assert len(lines) >= 2, lines
    beat = re.compile(r"\[2/7\] etcd v3\.6\.11: \d+s elapsed \(~2m05s expected\); go build etcd: ")
    assert all(beat.match(line) for line in lines), lines
    assert lines[-1].endswith("k8s.io/api/core/v1")
    assert "k8s.io/api/core/v1" in (tmp_path / "log").read_text()


def test_go_build_progress_counts_packages_against_the_total() -> None:
    describe = heartbeat.go_build_progress(1234)
    state = heartbeat.OutputState(lines=321, last="k8s.io/apiserver/pkg/server")
    assert describe(state) == "321 of at most 1234 packages compiled, last k8s.io/apiserver/pkg/server"
    assert heartbeat.go_build_progress(None)(heartbeat.OutputState()) == "0 packages compiled"


def test_failed_command_raises_with_its_tail_and_log(tmp_path: Path) -> None:
    hb = heartbeat.Heartbeat("x", lambda _m: None, interval=10)
    with pytest.raises(ToolError, match=r"go build x.*exit 3.*full log.*\n.*boom"):
        hb.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], step="go build x", log=tmp_path / "l")


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (59.6, "1m00s"), (441, "7m21s")])
def test_durations_read_as_minutes_and_seconds(seconds: float, text: str) -> None:
    assert heartbeat.fmt_duration(seconds) == text


def test_bad_interval_from_env_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_HEARTBEAT_SECONDS", "soon")
    with pytest.raises(ToolError, match="LLMOPS_HEARTBEAT_SECONDS"):
        heartbeat.interval_from_env()


def test_expected_duration_is_the_last_install_here_else_the_benchmarks_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    spec = tools.load_specs()["kube-control-plane"]
    seeded, source = tools.expected_seconds(spec)
    assert seeded == tools.seed_seconds()["kube-control-plane"] and "benchmarks.md" in source
    tools.record_seconds(spec, 398.26)
    assert tools.expected_seconds(spec)[0] == 398.3
    assert "last install here" in tools.expected_seconds(spec)[1]


def test_seed_rows_are_read_from_the_toolchain_table() -> None:
    text = "| step | s |\n| --- | ---: |\n| `helm3` v3.21.4 | 173.5 |\n| harness venv | 60 |\n| `kwok` + kwokctl | 92.2 |\n"
    assert tools.seed_seconds(text) == {"helm3": 173.5, "kwok": 92.2}
