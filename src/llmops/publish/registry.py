"""A CNCF distribution registry (pinned tool ``registry``) on loopback, for publishing tests and benchmarks.

The registry keeps its blobs and config in a folder of the caller's; it
serves plain HTTP on 127.0.0.1 only (Helm talks to it with ``--plain-http``).
OpenTelemetry exporters are switched off: nothing may leave the machine.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmops import procs, tools
from llmops.errors import LlmopsError

PORTS = range(16100, 16110)
READY_TIMEOUT_S = 30.0


class RegistryError(LlmopsError):
    exit_code = 2


def free_port(ports: range = PORTS) -> int:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RegistryError(f"no free port in {ports.start}-{ports.stop - 1} on 127.0.0.1 for the OCI registry")


@dataclass
class LocalRegistry:
    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "charts") -> str:
        """oci:// URL of a repository namespace in this registry."""
        return f"oci://{self.host}/{path.strip('/')}"

    def start(self) -> LocalRegistry:
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        cfg = self.root / "config.yml"
        cfg.write_text(yaml.safe_dump(config))
        env = tools.tool_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                              "OTEL_SDK_DISABLED": "true"})
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen([str(tools.require("registry")), "serve", str(cfg)], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RegistryError(f"registry exited {self.process.returncode}; log: {self.root / 'registry.log'}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RegistryError(f"registry on {self.host} not ready after {READY_TIMEOUT_S:.0f}s; log: {self.root / 'registry.log'}")

    def stop(self) -> None:
        procs.stop_process(self.process, timeout=10)
        self.process = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
