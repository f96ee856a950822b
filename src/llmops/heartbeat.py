"""Progress for long installs: run a command and say every ~20 s what it is doing.

A cold toolchain build runs for minutes per tool (the Kubernetes control
plane about seven); a line every ``interval`` seconds with the elapsed time,
the expected time and what the command is on (the Go package count and the
last package compiled, pip's last line) tells a newcomer it is not hung,
without a spinner that would flood a CI log.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import ToolError

Progress = Callable[[str], None]

DEFAULT_INTERVAL_S = 20.0


def interval_from_env() -> float:
    """Seconds between heartbeat lines: ``$LLMOPS_HEARTBEAT_SECONDS``, default 20."""
    raw = os.environ.get("LLMOPS_HEARTBEAT_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        raise ToolError(f"LLMOPS_HEARTBEAT_SECONDS={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise ToolError(f"LLMOPS_HEARTBEAT_SECONDS={raw!r}: must be positive")
    return value


def fmt_duration(seconds: float) -> str:
    """``75.4`` -> ``"1m15s"``; under a minute ``"42s"``."""
    total = int(round(seconds))
    minutes, secs = divmod(total, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class OutputState:
    """What a watched command has printed so far."""

    lines: int = 0
    last: str = ""


Describe = Callable[[OutputState], str]


def last_line(state: OutputState) -> str:
    """Default description: the command's last output line (pip, apt, go mod download)."""
    return _clip(state.last) if state.last else "no output yet"


def go_build_progress(total: int | None) -> Describe:
    """Description for ``go build -v``: it prints each package as it compiles it."""

    def describe(state: OutputState) -> str:
        of = f" of at most {total}" if total else ""
        last = f", last {_clip(state.last)}" if state.last else ""
        return f"{state.lines}{of} packages compiled{last}"

    return describe


def _clip(text: str, width: int = 100) -> str:
    text = text.strip()
    return text if len(text) <= width else text[: width - 3] + "..."


class Heartbeat:
    """Elapsed/expected time of one install and the lines that report it."""

    def __init__(self, label: str, progress: Progress, expected: float | None = None,
                 source: str = "", interval: float | None = None) -> None:
        self.label = label
        self.progress = progress
        self.expected = expected
        self.source = source
        self.interval = interval if interval is not None else interval_from_env()
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expectation(self) -> str:
        if self.expected is None:
            return "no earlier measurement"
        return f"expected ~{fmt_duration(self.expected)}" + (f" ({self.source})" if self.source else "")

    def beat(self, step: str, doing: str) -> None:
        exp = f" (~{fmt_duration(self.expected)} expected)" if self.expected is not None else ""
        self.progress(f"{self.label}: {fmt_duration(self.elapsed())} elapsed{exp}; {step}: {doing}")

    def run(self, argv: list[str], *, step: str, log: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None, describe: Describe = last_line) -> str:
        """Run ARGV, append its output to LOG, beat every interval; ToolError with the tail on failure.

        Returns the command's output (stdout and stderr merged).
        """
        log.parent.mkdir(parents=True, exist_ok=True)
        state = OutputState()
        done = threading.Event()
        output: list[str] = []

        def ticker() -> None:
            while not done.wait(self.interval):
                self.beat(step, describe(state))

        with log.open("a") as fh:
            fh.write(f"## {step}: {' '.join(argv)}\n")
            fh.flush()
            try:
                proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
            except OSError as exc:
                raise ToolError(f"{step}: cannot run `{argv[0]}`: {exc}") from exc
            thread = threading.Thread(target=ticker, name=f"heartbeat-{step}", daemon=True)
            thread.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    fh.write(line)
                    output.append(line)
                    if line.strip():
                        state.lines += 1
                        state.last = line.rstrip("\n")
                code = proc.wait()
            finally:
                done.set()
                thread.join()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        text = "".join(output)
        if code != 0:
            tail = "\n".join(text.strip().splitlines()[-20:])
            raise ToolError(f"{step}: `{' '.join(argv)}` failed with exit {code} (full log: {log}):\n{tail}")
        return text
