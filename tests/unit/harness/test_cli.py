"""The CLI surface: discoverable subcommands, --help on each, trustworthy exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llmops import paths
from llmops.cli import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


def test_help_lists_every_subcommand() -> None:
    # The package runs from src/ (no install needed): the same as `make` and CI do.
    env = {**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "llmops", "--help"], capture_output=True, text=True, check=True, env=env
    ).stdout
    for name in _subcommands():
        assert name in out
    assert {"tools", "demo"} <= set(_subcommands())


@pytest.mark.parametrize("name", _subcommands())
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: llmops" in capsys.readouterr().out


def test_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_tool_error_exits_2_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "install", "helm5"]) == 2
    assert "unknown tool(s) helm5" in capsys.readouterr().err
