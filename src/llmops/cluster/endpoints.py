"""Local inference endpoints: llm-d-inference-sim processes on loopback, one per model replica.

On the local provider (kwok) pods never run a process and Services do not
route, so the harness gives each engine replica a real process on the host:
the pinned llm-d-inference-sim, with the configured TTFT, inter-token latency
and ``max-num-seqs``, on a port of 18000-18099 (this module's range).

- :class:`Simulator` is one process: start, wait for ``/health``, stop (SIGTERM,
  then SIGKILL). Started from the main thread, simulators die with the harness
  process even when it is killed (``PR_SET_PDEATHSIG``).
- :class:`EndpointManager` owns a set of them, keyed by *group* (e.g.
  ``<namespace>/<deployment>``) and replica index; :meth:`EndpointManager.reconcile`
  keeps exactly N running for a group, which is what an autoscaling test needs to
  give every Ready pod its own simulator. It is a context manager that stops
  everything it started (and an atexit hook does the same).
- The registry (``endpoints.json``, see :func:`registry_path`) maps
  release/namespace/model to the URLs of the simulators serving them; ``llmops
  loadtest --release NAME -n NS`` reads it on the local provider. Each manager
  writes only its own entries, under a file lock; entries of dead processes are
  dropped when read.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from llmops import paths, poll, procs, tools
from llmops.errors import LlmopsError

PORT_RANGE = range(18000, 18100)
SIMULATOR = "llm-d-inference-sim"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def registry_path() -> Path:
    """``$LLMOPS_ENDPOINTS_REGISTRY``, else ``<cache>/state/endpoints.json``.

    Deliberately beside, not inside, the cluster's folder: ``llmops cluster down``
    removes that folder and checks that nothing is left in it, while endpoints
    may outlive (or predate) a cluster. Entries carry release and namespace.
    """
    explicit = os.environ.get("LLMOPS_ENDPOINTS_REGISTRY")
    return Path(explicit) if explicit else paths.cache_root() / "state" / "endpoints.json"


def without_port(args: Sequence[str]) -> list[str]:
    """ARGS minus any ``--port N`` / ``--port=N`` (each local engine gets its own port)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--port":
            skip = True
        elif not arg.startswith("--port="):
            out.append(arg)
    return out


@dataclass(frozen=True)
class SimulatorConfig:
    """How one model's simulator behaves. Latencies in milliseconds.

    ``engine_args``, when given, are the container args exactly as the vllm chart
    renders them for ``engine: simulator`` (see :meth:`from_engine_args`); only
    ``--port`` is replaced. Otherwise the argv is built from the fields.
    """

    model: str
    ttft_ms: float = 100.0
    itl_ms: float = 10.0
    max_num_seqs: int = 16
    served_model_names: tuple[str, ...] = ()
    mode: str = "random"
    extra_args: tuple[str, ...] = ()
    engine_args: tuple[str, ...] = ()

    @classmethod
    def from_engine_args(cls, args: Sequence[str]) -> SimulatorConfig:
        """Config from a rendered engine container's args (``--model X --served-model-name Y ...``)."""
        args = tuple(str(a) for a in args)
        values: dict[str, list[str]] = {}
        flag = ""
        for arg in args:
            if arg.startswith("--"):
                flag, eq, value = arg[2:].partition("=")
                values.setdefault(flag, [])
                if eq:
                    values[flag].append(value)
                    flag = ""
            elif flag:
                values[flag].append(arg)
        model = (values.get("model") or [""])[0]
        if not model:
            raise LlmopsError(f"engine args have no --model: {' '.join(args)}")
        served = tuple(values.get("served-model-name") or ())
        from llmops.loadtest.shapes import parse_duration

        def ms(flag: str, default: float) -> float:
            raw = values.get(flag)
            return parse_duration(raw[0]) * 1000 if raw else default

        seqs = values.get("max-num-seqs")
        return cls(
            model=model,
            ttft_ms=ms("time-to-first-token", 0.0),
            itl_ms=ms("inter-token-latency", 0.0),
            max_num_seqs=int(seqs[0]) if seqs else cls.max_num_seqs,
            served_model_names=served,
            mode=(values.get("mode") or [cls.mode])[0],
            engine_args=args,
        )

    @property
    def served(self) -> tuple[str, ...]:
        """The model names clients put in requests."""
        return self.served_model_names or (self.model,)

    def argv(self, port: int) -> list[str]:
        if self.engine_args:
            return [*without_port(self.engine_args), "--port", str(port)]
        argv = [
            "--model", self.model,
            "--port", str(port),
            "--time-to-first-token", f"{self.ttft_ms:g}ms",
            "--inter-token-latency", f"{self.itl_ms:g}ms",
            "--max-num-seqs", str(self.max_num_seqs),
            "--mode", self.mode,
            # Offline: without it the simulator asks huggingface.co whether the model exists.
            "--force-dummy-tokenizer",
        ]  # fmt: skip
        if self.served_model_names:
            argv += ["--served-model-name", *self.served_model_names]
        return argv + list(self.extra_args)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Simulator:
    """One llm-d-inference-sim process on 127.0.0.1:``port``."""

    config: SimulatorConfig
    port: int
    log_path: Path
    group: str = ""
    index: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        argv = self.config.argv(self.port)
        return "--self-signed-certs" in argv or "--ssl-certfile" in argv

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, binary: Path, *, detached: bool = False) -> None:
        """Spawn the process; ``detached`` ones get their own session and outlive the harness."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [str(binary), *self.config.argv(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # PR_SET_PDEATHSIG fires when the forking *thread* exits, so it is only
                # safe from the main thread; elsewhere the manager's atexit hook stops it.
                preexec_fn=None if detached or threading.current_thread() is not threading.main_thread() else _die_with_parent,  # noqa: PLW1509
                start_new_session=detached,
            )
        finally:
            log.close()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def listening(self) -> bool:
        """Whether this simulator's own process has a listening socket on its port."""
        if self.process is None:
            return False
        try:
            conns = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port for c in conns)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll ``/health`` until it answers 200; fail fast if the process exits."""
        def healthy() -> bool:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise LlmopsError(
                    f"simulator for {self.config.model} on port {self.port} exited (code {code}) before /health "
                    f"answered; its log {self.log_path}:\n{self.log_tail()}"
                )
            # loopback readiness only: a self-signed simulator certificate is expected. Another
            # process (a parallel test worker's simulator) may hold the port and answer /health
            # while ours fails to bind: the answer counts only once our own process listens there.
            return poll.http_ok(f"{self.url}/health", insecure=self.tls) and self.listening()

        poll.until(f"simulator for {self.config.model} on {self.url}: /health to answer 200", healthy,
                   timeout=timeout, interval=0.05, describe=lambda: f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        procs.stop_process(self.process, timeout)


@contextlib.contextmanager
def _locked_registry(path: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the registry under an exclusive lock; drops entries of dead processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
        except json.JSONDecodeError:
            data = {}
        data["endpoints"] = [e for e in data.get("endpoints", []) if procs.pid_alive(e.get("pid"))]
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def read_registry(path: Path | None = None) -> list[dict[str, Any]]:
    """Live registry entries: ``{"url", "pid", "model", "group", "index", "release", "namespace", ...}``."""
    path = path or registry_path()
    if not path.exists():
        return []
    with _locked_registry(path) as data:
        return list(data["endpoints"])


def lookup(release: str, namespace: str, path: Path | None = None) -> dict[str, dict[str, list[str]]]:
    """For RELEASE in NAMESPACE: model (the ``llmops.io/model`` label value) -> served name -> URLs."""
    out: dict[str, dict[str, list[str]]] = {}
    for entry in read_registry(path):
        if entry.get("release") == release and entry.get("namespace") == namespace:
            key = entry.get("model_name") or entry["model"]
            for name in entry.get("served_model_names") or [entry["model"]]:
                out.setdefault(key, {}).setdefault(name, []).append(entry["url"])
    return out


class EndpointManager:
    """Starts, tracks and stops simulators; ``with EndpointManager() as m:`` stops them all on exit."""

    def __init__(
        self,
        *,
        log_dir: str | Path | None = None,
        registry: str | Path | None = None,
        ports: Sequence[int] = PORT_RANGE,
        binary: Path | None = None,
    ) -> None:
        self.log_dir = Path(log_dir) if log_dir else paths.cache_root() / "state" / "endpoint-logs"
        self.registry = Path(registry) if registry else registry_path()
        self.ports = list(ports)
        self._binary = binary
        self._sims: dict[tuple[str, int], Simulator] = {}
        self._lock = threading.RLock()  # another thread and the owner may both call in
        self.detached = False
        atexit.register(self.stop_all)  # last resort when the owner forgets (or cannot) exit the context

    def detach(self) -> None:
        """Keep every simulator running after this manager exits (``make demo --keep``).

        They stay in the registry, serve ``llmops loadtest --release``, and stop
        with ``llmops endpoints down``. Simulators started afterwards are detached
        from the start (own session, no parent-death signal).
        """
        with self._lock:
            self.detached = True

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = tools.require(SIMULATOR)
        return self._binary

    def __enter__(self) -> EndpointManager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_all()

    # -- queries -----------------------------------------------------------
    def simulators(self, group: str | None = None) -> list[Simulator]:
        return [s for (g, _), s in sorted(self._sims.items()) if group is None or g == group]

    def urls(self, group: str) -> list[str]:
        return [s.url for s in self.simulators(group) if s.alive()]

    def targets(self) -> dict[str, list[str]]:
        """model (each served name) -> URLs of the live simulators this manager runs."""
        out: dict[str, list[str]] = {}
        for sim in self.simulators():
            if sim.alive():
                for name in sim.config.served:
                    out.setdefault(name, []).append(sim.url)
        return out

    # -- lifecycle ---------------------------------------------------------
    def _free_port(self, exclude: set[int]) -> int:
        taken = {s.port for s in self._sims.values()} | exclude
        taken |= {int(e["url"].rsplit(":", 1)[1]) for e in read_registry(self.registry) if "url" in e}
        for port in self.ports:
            if port not in taken and port_is_free(port):
                return port
        raise LlmopsError(
            f"no free port left in {self.ports[0]}-{self.ports[-1]} for another simulator; "
            "stop stale ones (see `llmops endpoints status`)"
        )

    def _start(
        self,
        config: SimulatorConfig,
        *,
        group: str | None = None,
        index: int | None = None,
        labels: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = READY_TIMEOUT_S,
    ) -> Simulator:
        """Start one simulator (and by default wait for /health); retries another port if the bind races."""
        group = group or config.model
        if index is None:
            used = {i for (g, i) in self._sims if g == group}
            index = next(i for i in range(len(used) + 1) if i not in used)
        if (group, index) in self._sims and self._sims[(group, index)].alive():
            raise LlmopsError(f"simulator {group}[{index}] is already running")
        tried: set[int] = set()
        last_error: LlmopsError | None = None
        for _ in range(3):
            port = self._free_port(tried)
            tried.add(port)
            safe = group.replace("/", "_")
            sim = Simulator(config, port, self.log_dir / f"{safe}-{index}-{port}.log", group, index, dict(labels or {}))
            sim.start(self.binary, detached=self.detached)
            self._sims[(group, index)] = sim
            if not wait:
                self._register(sim)
                return sim
            try:
                lost = self._lost_port(sim, timeout)
            except LlmopsError:
                del self._sims[(group, index)]
                raise
            if lost:
                last_error = LlmopsError(f"simulator {group}[{index}] lost port {port} to another process")
                continue
            self._register(sim)
            return sim
        del self._sims[(group, index)]
        raise last_error or LlmopsError("could not start the simulator")

    @staticmethod
    def _lost_port(sim: Simulator, timeout: float) -> bool:
        """Wait until SIM answers; True when it lost its port to another process between the free check and
        its bind (it is stopped: start it again on another port). Any other failure raises."""
        try:
            sim.wait_ready(timeout)
            return False
        except LlmopsError:
            sim.stop()
            if "address already in use" in sim.log_tail().lower():
                return True
            raise

    def _stop(self, sim: Simulator) -> None:
        sim.stop()
        self._sims.pop((sim.group, sim.index), None)
        self._unregister([sim])

    def _stop_all(self) -> None:
        if self.detached:
            self._sims.clear()
            return
        sims = list(self._sims.values())
        for sim in sims:
            if sim.alive() and sim.process is not None:
                sim.process.send_signal(signal.SIGTERM)  # signal all first: they stop in parallel
        for sim in sims:
            sim.stop()
        self._sims.clear()
        self._unregister(sims)

    def _reconcile(
        self,
        group: str,
        config: SimulatorConfig,
        replicas: int,
        *,
        labels: dict[str, str] | None = None,
        timeout: float = READY_TIMEOUT_S,
    ) -> list[Simulator]:
        """Keep exactly ``replicas`` live simulators for ``group``: restart dead ones, add or remove (highest index first)."""
        if replicas < 0:
            raise LlmopsError(f"replicas must be >= 0, got {replicas}")
        current = self.simulators(group)
        for sim in current:
            if not sim.alive() or sim.index >= replicas:
                self.stop(sim)
        started = [
            self.start(config, group=group, index=i, labels=labels, wait=False)
            for i in range(replicas)
            if (group, i) not in self._sims
        ]
        for sim in started:  # they boot in parallel
            try:
                lost = self._lost_port(sim, timeout)
            except LlmopsError:
                self.stop(sim)
                raise
            if lost:  # again on another port, waiting this time (_start retries a lost port)
                self.stop(sim)
                self.start(config, group=group, index=sim.index, labels=labels, timeout=timeout)
        return self.simulators(group)

    def start(self, config: SimulatorConfig, **kwargs: Any) -> Simulator:
        """Start one simulator (and by default wait for /health); see :meth:`_start` for the keywords."""
        with self._lock:
            return self._start(config, **kwargs)

    def stop(self, sim: Simulator) -> None:
        with self._lock:
            self._stop(sim)

    def stop_all(self) -> None:
        with self._lock:
            self._stop_all()

    def reconcile(self, group: str, config: SimulatorConfig, replicas: int, **kwargs: Any) -> list[Simulator]:
        """Keep exactly ``replicas`` live simulators for ``group`` (see :meth:`_reconcile`)."""
        with self._lock:
            return self._reconcile(group, config, replicas, **kwargs)

    # -- registry ----------------------------------------------------------
    def _register(self, sim: Simulator) -> None:
        entry = {
            "url": sim.url,
            "pid": sim.pid,
            "owner_pid": os.getpid(),
            "model": sim.config.model,
            "served_model_names": list(sim.config.served),
            "group": sim.group,
            "index": sim.index,
            "log": str(sim.log_path),
            "config": asdict(sim.config),
            **sim.labels,
        }
        with _locked_registry(self.registry) as data:
            data["endpoints"] = [e for e in data["endpoints"] if e.get("url") != sim.url] + [entry]

    def _unregister(self, sims: Sequence[Simulator]) -> None:
        if not sims or not self.registry.exists():
            return
        urls = {s.url for s in sims}
        with _locked_registry(self.registry) as data:
            data["endpoints"] = [e for e in data["endpoints"] if e.get("url") not in urls]


@dataclass(frozen=True)
class EngineDeployment:
    """An engine Deployment of a rendered release, as the host simulators mirror it."""

    name: str
    namespace: str
    model: str  # the llmops.io/model label
    replicas: int
    config: SimulatorConfig

    @property
    def group(self) -> str:
        return f"{self.namespace}/{self.name}"


def engine_deployments(manifests: Sequence[Any], namespace: str) -> list[EngineDeployment]:
    """Engine Deployments (label ``app.kubernetes.io/component=engine``) from rendered manifests.

    Each one's ``http`` container args become the simulator argv verbatim (port
    replaced), so the host process behaves as the pod would. A Deployment whose
    engine is not llm-d-inference-sim (the real vLLM) cannot be mirrored and is
    an error naming it.
    """
    out: list[EngineDeployment] = []
    for manifest in manifests:
        obj = getattr(manifest, "obj", manifest)
        if not isinstance(obj, dict) or obj.get("kind") != "Deployment":
            continue
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get("app.kubernetes.io/component") != "engine":
            continue
        containers = obj["spec"]["template"]["spec"].get("containers") or []
        engine = next(
            (c for c in containers if any(p.get("name") == "http" for p in c.get("ports") or [])),
            containers[0] if containers else None,
        )
        if engine is None:
            continue
        if SIMULATOR not in str(engine.get("image", "")):
            raise LlmopsError(
                f"Deployment {meta.get('name')} runs {engine.get('image')}, not {SIMULATOR}: the local "
                "endpoints can only mirror `vllm.engine: simulator` (use values/local.yaml)"
            )
        replicas = obj["spec"].get("replicas", 1)
        out.append(
            EngineDeployment(
                name=str(meta["name"]),
                namespace=str(meta.get("namespace") or namespace),
                model=str(labels.get("llmops.io/model", meta["name"])),
                replicas=int(1 if replicas is None else replicas),
                config=SimulatorConfig.from_engine_args(engine.get("args") or []),
            )
        )
    return out


def ready_replicas(namespace: str, deployments: Sequence[str]) -> dict[str, int]:
    """``status.readyReplicas`` of each named Deployment, read from the API server (0 when absent)."""
    from kubernetes import client
    from kubernetes import config as kconfig

    from llmops.cluster.kubeconfig import resolve

    path = resolve()
    if path is None:
        raise LlmopsError("no kubeconfig: start the local cluster (`llmops cluster up`) or set KUBECONFIG")
    api = client.AppsV1Api(kconfig.new_client_from_config(config_file=path))
    out: dict[str, int] = {}
    for name in deployments:
        try:
            dep = api.read_namespaced_deployment(name, namespace, _request_timeout=10)
            out[name] = int(dep.status.ready_replicas or 0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise LlmopsError(f"cannot read Deployment {namespace}/{name}: {exc.reason}") from exc
            out[name] = 0
    return out


def _is_simulator(pid: int) -> bool:
    return any(SIMULATOR in arg for arg in procs.command_line(pid))


def stop_registered(release: str | None = None, namespace: str | None = None, path: Path | None = None) -> list[str]:
    """Stop registered simulators (optionally only RELEASE/NAMESPACE's); returns their URLs.

    Only processes whose command line is llm-d-inference-sim are signalled, so a
    recycled pid never hits an unrelated process.
    """
    path = path or registry_path()
    if not path.exists():
        return []
    stopped: list[str] = []
    with _locked_registry(path) as data:
        keep = []
        for entry in data["endpoints"]:
            if (release is None or entry.get("release") == release) and (namespace is None or entry.get("namespace") == namespace):
                pid = int(entry["pid"])
                if _is_simulator(pid):
                    os.kill(pid, signal.SIGTERM)
                stopped.append(str(entry["url"]))
            else:
                keep.append(entry)
        data["endpoints"] = keep
    return stopped
