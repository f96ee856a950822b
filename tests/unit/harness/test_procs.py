"""Host child processes: liveness (zombies count as gone) and SIGTERM-then-SIGKILL stopping."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from llmops import procs


def test_pid_alive_sees_running_processes_and_treats_zombies_and_junk_as_gone() -> None:
    assert procs.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    # exited but not yet reaped: a zombie, which must not count as running
    while procs.pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.pid_alive(child.pid)
    child.wait()
    assert not procs.pid_alive(child.pid)
    for junk in (None, "123", 0, -1):
        assert not procs.pid_alive(junk)


def test_stop_process_kills_a_child_that_ignores_sigterm() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    procs.stop_process(child, timeout=0.5)
    assert child.returncode == -9  # SIGKILL after the grace period, not the 60 s sleep
    assert time.monotonic() - started < 10
    procs.stop_process(child, timeout=0.5)  # an already stopped process is left alone


def test_command_line_names_the_program_and_is_empty_for_a_gone_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-arg"])
    try:
        assert procs.command_line(child.pid)[-1] == "marker-arg"
    finally:
        child.kill()
        child.wait()
    assert procs.command_line(child.pid) == []
