"""Child processes the harness starts on the host (simulators, Prometheus, KEDA)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import psutil


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM PROC and wait up to TIMEOUT seconds; SIGKILL it if it is still running."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def pid_alive(pid: Any) -> bool:
    """Whether PID names a running process (not a zombie); anything but a positive int is not one."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        # A zombie child of ours counts as gone.
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.AccessDenied:
        return True
    except psutil.Error:  # NoSuchProcess and friends
        return False


def command_line(pid: int) -> list[str]:
    """PID's argv, or [] when it is gone or unreadable (recycled pids are checked by name with this)."""
    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []
