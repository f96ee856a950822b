"""A real worker node for the local cluster: containerd + runc + CNI + kubelet + kube-proxy.

kwok nodes never start a container; this node does. It lives, as kind's node
container does, in namespaces that ``llmops cluster up`` creates:

- a **network namespace** ``<cluster>-node`` joined to the host by one veth
  pair (host ``10.250.<i>.1/30``, node ``10.250.<i>.2/30``, ``i`` = the
  cluster's port block). Pods sit on a bridge inside it (``10.<100+i>.0.0/24``),
  Services get ``10.<110+i>.0.0/16``; the host routes both through the veth
  and nothing else: the node namespace has no default route, so no pod or
  node address is ever routed off this machine.
- a **mount namespace** (``unshare -m``) for the node's processes, with a
  tmpfs on ``/run`` and the cluster folder bound over ``/var/lib`` and
  ``/var/log``: the kubelet's hard-coded paths (device-plugin socket, pod
  logs), containerd's shim sockets and every container mount stay private
  and vanish with the processes.
- a **cgroup root** ``/<cluster>-node`` in each cgroup v1 hierarchy for the
  pods (kubelet ``cgroupRoot``).

The host keeps one DNAT rule (tagged ``llmops-node:<cluster>``) so that the
node reaches the API server, which listens on 127.0.0.1 only, through the
host end of the veth. ``stop`` kills every process in the namespaces and
cgroups, then deletes the rule, the cgroups and the network namespace (the
veth and routes go with it); :func:`leftovers` lists anything that survived.

A supervisor process (``python -m llmops.cluster.node supervise DIR``), started inside
both namespaces, runs containerd, the kubelet, the fake-GPU device plugin and
kube-proxy, and stops them in reverse order on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops import procs, tools
from llmops.errors import LlmopsError

Say = Callable[[str], None]

POOL_LABEL = "llmops.io/pool"  # same label as cluster.POOL_LABEL (kwok pools)
NODE_LABEL_POOL = "real"
# Pods opt in to the real node with this toleration (and, to be sure to land
# there, the pool label): a pod that names an image nobody built here stays
# on the kwok nodes instead of failing to pull.
REAL_NODE_TAINT = {"key": "llmops.io/real-node", "value": "true", "effect": "NoSchedule"}
FAKE_GPUS = 2  # default count of fake nvidia.com/gpu the device plugin advertises (cluster up --node-gpus)
# Every fake GPU pod on the node counts against maxPods (kubelet_config) with the pods that serve it.
MAX_FAKE_GPUS = 64
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # same label as cluster.GPU_PRODUCT_LABEL (GPU feature discovery's)
# Admission plugins that pin a namespace's pods to the real node (a namespace
# annotation each; see namespace_annotations): no chart needs a node selector
# or toleration of its own to run here.
ADMISSION_PLUGINS = "PodNodeSelector,PodTolerationRestriction"
CGROUP_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd")
CGROUP_BASE = Path("/sys/fs/cgroup")
RULE_TAG_PREFIX = "llmops-node:"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
KUBELET_PORT = 10250


@dataclass(frozen=True)
class NodeSpec:
    """Everything that names or addresses one cluster's real node."""

    cluster: str
    index: int  # the cluster's port block, 0-9: keeps two clusters' subnets apart
    api_port: int
    folder: Path  # <cluster dir>/node
    gpus: int = FAKE_GPUS  # fake nvidia.com/gpu the device plugin advertises
    # With a product, the node carries GPU feature discovery's labels (product, count, present), so
    # pods that select a GPU product (vllm.models[].gpu.product) can run here; "" leaves them off.
    gpu_product: str = ""

    @classmethod
    def for_cluster(cls, cluster: str, port_base: int, cluster_dir: Path, *, block: int, gpus: int = FAKE_GPUS,
                    gpu_product: str = "") -> NodeSpec:  # fmt: skip
        """BLOCK is the cluster's port block (cluster.port_block): it keeps two clusters' subnets apart."""
        if not 1 <= gpus <= MAX_FAKE_GPUS:
            raise LlmopsError(f"the real node's fake GPU count (--node-gpus) must be 1-{MAX_FAKE_GPUS}, not {gpus}")
        return cls(cluster, block, port_base, cluster_dir / "node", gpus, gpu_product)

    @property
    def labels(self) -> dict[str, str]:
        """The node's labels: its pool, and GPU feature discovery's when it has a GPU product."""
        labels = {POOL_LABEL: NODE_LABEL_POOL, "llmops.io/real-node": "true"}
        if self.gpu_product:
            labels.update({GPU_PRODUCT_LABEL: self.gpu_product, "nvidia.com/gpu.count": str(self.gpus),
                           "nvidia.com/gpu.present": "true"})  # fmt: skip
        return labels

    # names -----------------------------------------------------------------
    @property
    def netns(self) -> str:
        return f"{self.cluster}-node"

    @property
    def node_name(self) -> str:
        return f"{self.cluster}-node-0"

    @property
    def veth_host(self) -> str:
        # Interface names stop at 15 characters; the alias carries the cluster name.
        return "lv" + hashlib.sha1(self.cluster.encode()).hexdigest()[:10] + "h"

    @property
    def veth_peer(self) -> str:
        return self.veth_host[:-1] + "n"

    @property
    def cgroup_root(self) -> str:
        return f"/{self.cluster}-node"

    @property
    def rule_tag(self) -> str:
        return f"{RULE_TAG_PREFIX}{self.cluster}"

    # addresses -------------------------------------------------------------
    @property
    def host_ip(self) -> str:
        return f"10.250.{self.index}.1"

    @property
    def node_ip(self) -> str:
        return f"10.250.{self.index}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.{100 + self.index}.0.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.{100 + self.index}.0.1"

    @property
    def service_cidr(self) -> str:
        return f"10.{110 + self.index}.0.0/16"

    @property
    def kubernetes_service_ip(self) -> str:
        return f"10.{110 + self.index}.0.1"

    # files -----------------------------------------------------------------
    @property
    def containerd_socket(self) -> Path:
        return self.folder / "containerd.sock"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def pid_file(self) -> Path:
        return self.folder / "supervisor.pid"

    @property
    def spec_file(self) -> Path:
        return self.folder / "node.json"

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.spec_file.write_text(json.dumps({**asdict(self), "folder": str(self.folder)}))

    @classmethod
    def load(cls, folder: Path) -> NodeSpec | None:
        try:
            raw = json.loads((folder / "node.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(raw["cluster"], int(raw["index"]), int(raw["api_port"]), Path(raw["folder"]),
                   int(raw.get("gpus", FAKE_GPUS)), str(raw.get("gpu_product", "")))  # fmt: skip


def namespace_annotations() -> dict[str, str]:
    """Namespace annotations that send every pod of the namespace to the real node.

    PodNodeSelector adds the node selector, PodTolerationRestriction the
    toleration of the node's taint, to each pod at admission, as a platform
    team pins a namespace to a node pool.
    """
    toleration = {"key": REAL_NODE_TAINT["key"], "operator": "Equal", "value": REAL_NODE_TAINT["value"],
                  "effect": REAL_NODE_TAINT["effect"]}
    return {
        "scheduler.alpha.kubernetes.io/node-selector": f"{POOL_LABEL}={NODE_LABEL_POOL}",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([toleration]),
    }


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def _sh(argv: Sequence[str], *, check: bool = True, timeout: float = 60, input_text: str | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, input=input_text)
    if check and proc.returncode != 0:
        raise LlmopsError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout


def _in_netns(spec: NodeSpec, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", spec.netns, *argv]


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def netns_pids(name: str) -> list[int]:
    """Processes running in network namespace NAME (none when it does not exist)."""
    if not netns_exists(name):
        return []
    return [int(p) for p in _sh(["ip", "netns", "pids", name], check=False).split() if p.isdigit()]


# ---------------------------------------------------------------------------
# Preflight: one clear error per missing piece, before anything is created
# ---------------------------------------------------------------------------


def preflight(spec: NodeSpec) -> None:
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("the real node needs root (network and mount namespaces, cgroups); run as root or pass --real-nodes 0")
    for tool in ("containerd", "runc", "kubelet", "cni-bridge", "iptables", "coredns"):
        if not tools.paths.tool_path(tool).exists():
            problems.append(f"{tool} is not installed; run `make bootstrap` (or `llmops tools install`)")
    for binary in ("ip", "nsenter", "unshare", "mount"):
        if shutil.which(binary) is None:
            problems.append(f"`{binary}` is not on PATH (Debian packages iproute2 / util-linux)")
    if not Path("/proc/sys/net/bridge").exists() and not Path("/sys/module/bridge").exists():
        problems.append("the kernel has no bridge support (module `bridge`); `modprobe bridge` or pass --real-nodes 0")
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("the kernel has no overlay filesystem (containerd's snapshotter); `modprobe overlay`")
    for ctrl in CGROUP_V1:
        if not (CGROUP_BASE / ctrl).is_dir():
            problems.append(f"cgroup v1 hierarchy {CGROUP_BASE / ctrl} is missing (the node's kubelet runs with cgroupfs on v1)")
    if len(str(spec.containerd_socket)) > 100:
        problems.append(f"{spec.containerd_socket} is too long for a unix socket; set LLMOPS_CACHE to a shorter path")
    if netns_exists(spec.netns):
        problems.append(
            f"network namespace {spec.netns} already exists (a killed run?); `llmops cluster down --name {spec.cluster}` removes it"
        )
    routes = _sh(["ip", "-4", "route", "show"], check=False)
    for cidr in (spec.pod_cidr, spec.service_cidr, f"10.250.{spec.index}.0/30"):
        if cidr.split("/")[0] in routes:
            problems.append(f"{cidr} is already routed on this machine (`ip route`); another cluster on port block {spec.index}?")
    if problems:
        raise LlmopsError("cannot start the real node:\n  - " + "\n  - ".join(problems))


# ---------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------


def containerd_config(spec: NodeSpec, sandbox_image: str) -> str:
    f = spec.folder
    return f"""version = 2
root = "{f / 'containerd-root'}"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{spec.containerd_socket}"
[ttrpc]
  address = "{spec.containerd_socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{f / 'containerd-opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # No CAP_SYS_RESOURCE on these VMs: runc cannot lower oom_score_adj below ours.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{tools.paths.tool_path('runc').resolve()}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{tools.paths.tool_path('cni-bridge').resolve().parent}"
    conf_dir = "{f / 'cni'}"
"""


def cni_config(spec: NodeSpec) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "llmops",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                # No masquerade: nothing leaves the node namespace but replies to the host.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": spec.pod_cidr, "gateway": spec.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(spec.folder / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubeconfig(spec: NodeSpec, admin_kubeconfig: Path) -> dict[str, Any]:
    """The admin kubeconfig, pointed at the host end of the veth (the DNAT rule forwards to 127.0.0.1)."""
    cfg = yaml.safe_load(admin_kubeconfig.read_text())
    for c in cfg.get("clusters", []):
        c["cluster"]["server"] = f"https://{spec.host_ip}:{spec.api_port}"
    return dict(cfg)


def kubelet_config(spec: NodeSpec, ca_file: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # 1.35 refuses cgroup v1 hosts unless told otherwise (KEP-5573); these VMs are v1.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": spec.cgroup_root,
        "containerRuntimeEndpoint": f"unix://{spec.containerd_socket}",
        "address": spec.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": "cluster.local",
        # CoreDNS runs on the node address itself (see corefile()).
        "clusterDNS": [spec.node_ip],
        "resolvConf": str(spec.folder / "resolv.conf"),
        "registerWithTaints": [REAL_NODE_TAINT],
        "failSwapOn": False,
        # The kubelet's own default; the autoscaling benchmark runs up to 7 models x 8 engine pods here.
        "maxPods": 110,
        # Images are imported here, never pulled: the kubelet must not collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(spec: NodeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(spec.folder / "kubeconfig")},
        "hostnameOverride": spec.node_name,
        "bindAddress": spec.node_ip,
        "clusterCIDR": spec.pod_cidr,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Pod -> Service -> pod on the same bridge needs the reply to come back
        # through the node; masquerading every Service hop guarantees it.
        "iptables": {"masqueradeAll": True, "localhostNodePorts": False, "syncPeriod": "5s", "minSyncPeriod": "0s"},
        # conntrack limits are machine-wide sysctls: leave them alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{spec.node_ip}/32"],
    }


def corefile(spec: NodeSpec) -> str:
    """Cluster DNS for the node's pods. No ``forward``: names outside cluster.local are never sent anywhere."""
    return f"""cluster.local:53 in-addr.arpa:53 {{
    bind {spec.node_ip}
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {spec.folder / 'kubeconfig'}
        pods insecure
        fallthrough in-addr.arpa
    }}
    cache 30
}}
"""


def write_configs(spec: NodeSpec, admin_kubeconfig: Path, ca_file: Path, sandbox_image: str) -> None:
    f = spec.folder
    for sub in ("cni", "cni-ipam", "containerd-root", "containerd-opt", "var-lib/kubelet", "var-log", "logs"):
        (f / sub).mkdir(parents=True, exist_ok=True)
    (f / "containerd.toml").write_text(containerd_config(spec, sandbox_image))
    (f / "cni" / "10-llmops.conflist").write_text(json.dumps(cni_config(spec), indent=2))
    (f / "kubeconfig").write_text(yaml.safe_dump(kubeconfig(spec, admin_kubeconfig)))
    (f / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(spec, ca_file)))
    (f / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(spec)))
    # What pods with dnsPolicy Default get: no resolver at all (nothing outside the cluster is reachable).
    (f / "resolv.conf").write_text("")
    (f / "Corefile").write_text(corefile(spec))
    spec.save()


# ---------------------------------------------------------------------------
# Host side: namespace, veth, routes, the API DNAT rule
# ---------------------------------------------------------------------------


def create_network(spec: NodeSpec) -> None:
    ns = spec.netns
    _sh(["ip", "netns", "add", ns])
    _sh(["ip", "link", "add", spec.veth_host, "type", "veth", "peer", "name", spec.veth_peer])
    _sh(["ip", "link", "set", spec.veth_host, "alias", spec.rule_tag])
    _sh(["ip", "link", "set", spec.veth_peer, "netns", ns])
    _sh(["ip", "-n", ns, "link", "set", spec.veth_peer, "name", "eth0"])
    _sh(["ip", "-n", ns, "addr", "add", f"{spec.node_ip}/30", "dev", "eth0"])
    _sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
    _sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    _sh(["ip", "addr", "add", f"{spec.host_ip}/30", "dev", spec.veth_host])
    _sh(["ip", "link", "set", spec.veth_host, "up"])
    for cidr in (spec.pod_cidr, spec.service_cidr):
        _sh(["ip", "route", "add", cidr, "via", spec.node_ip, "dev", spec.veth_host])
    # Inside the node namespace: forward between eth0 and the pod bridge, and
    # let bridged pod traffic meet kube-proxy's rules.
    sysctls = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
    script = "; ".join(f"[ -e /proc/sys/{k} ] && echo {v} > /proc/sys/{k}" for k, v in sysctls.items()) + "; true"
    _sh(_in_netns(spec, "sh", "-c", script))
    # The API server listens on 127.0.0.1 only; the node reaches it at the
    # host end of the veth, rewritten to loopback (route_localnet allows that
    # for this interface only).
    Path(f"/proc/sys/net/ipv4/conf/{spec.veth_host}/route_localnet").write_text("1")
    _sh(["iptables", "-t", "nat", "-A", "PREROUTING", "-i", spec.veth_host, "-d", spec.host_ip, "-p", "tcp",
         "--dport", str(spec.api_port), "-m", "comment", "--comment", spec.rule_tag,
         "-j", "DNAT", "--to-destination", f"127.0.0.1:{spec.api_port}"])


def _host_rules(tag: str) -> list[tuple[str, list[str]]]:
    """(table, rule args after -A) of every host iptables rule whose comment is TAG."""
    import shlex

    found: list[tuple[str, list[str]]] = []
    for table in ("nat", "filter"):
        for line in _sh(["iptables", "-t", table, "-S"], check=False).splitlines():
            args = shlex.split(line)
            if args[:1] == ["-A"] and tag in args:
                found.append((table, args[1:]))
    return found


def _delete_host_rules(tag: str) -> None:
    for table, args in _host_rules(tag):
        _sh(["iptables", "-t", table, "-D", *args], check=False)


# ---------------------------------------------------------------------------
# Start / stop
# ---------------------------------------------------------------------------


def start(spec: NodeSpec, say: Say) -> int:
    """Start the supervisor inside the node's namespaces; returns its pid."""
    import llmops

    env = dict(os.environ, PYTHONPATH=str(Path(llmops.__file__).resolve().parents[1]))
    env["PATH"] = f"{tools.paths.bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    spec.logs.mkdir(parents=True, exist_ok=True)
    argv = [
        "nsenter", f"--net=/run/netns/{spec.netns}", "--",
        "unshare", "--mount", "--propagation", "slave", "--",
        sys.executable, "-m", "llmops.cluster.node", "supervise", str(spec.folder),
    ]  # fmt: skip
    with (spec.logs / "supervisor.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    spec.pid_file.write_text(str(proc.pid))
    return proc.pid


def _supervisor_pid(spec: NodeSpec) -> int:
    """The live supervisor's pid, or 0; a recycled pid (after a reboot) is not taken for it."""
    try:
        pid = int(spec.pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return 0
    ours = b"llmops.cluster.node" in cmdline and str(spec.folder).encode() in cmdline
    return pid if ours and procs.pid_alive(pid) else 0


def supervisor_alive(spec: NodeSpec) -> bool:
    return _supervisor_pid(spec) > 0


def _cgroup_dirs(spec: NodeSpec) -> list[Path]:
    return [CGROUP_BASE / c / spec.cgroup_root.lstrip("/") for c in CGROUP_V1]


def _pids_in(spec: NodeSpec) -> set[int]:
    found: set[int] = set()
    if netns_exists(spec.netns):
        out = _sh(["ip", "netns", "pids", spec.netns], check=False)
        found.update(int(p) for p in out.split() if p.isdigit())
    for root in _cgroup_dirs(spec):
        if root.is_dir():
            for procs_file in root.rglob("cgroup.procs"):
                try:
                    found.update(int(p) for p in procs_file.read_text().split())
                except OSError:
                    continue
    found.discard(os.getpid())
    return found


def stop(spec: NodeSpec, say: Say = lambda _m: None) -> list[str]:
    """Stop the node and remove every trace of it; returns what had to be force-killed."""
    killed: list[str] = []
    pid = _supervisor_pid(spec)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while procs.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Whatever is left (pods, shims, a supervisor killed with -9) dies now; the
    # mount namespace and every container mount in it go with the last process.
    for _ in range(20):
        left = _pids_in(spec)
        if not left:
            break
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
                killed.append(str(p))
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    _remove_cgroups(spec)
    _delete_host_rules(spec.rule_tag)
    if netns_exists(spec.netns):
        _sh(["ip", "netns", "del", spec.netns], check=False)
    if _link_exists(spec.veth_host):
        _sh(["ip", "link", "del", spec.veth_host], check=False)
    return killed


def _remove_cgroups(spec: NodeSpec) -> None:
    # A killed task leaves its cgroup only once reaped: retry briefly.
    for _ in range(50):
        for root in _cgroup_dirs(spec):
            if not root.is_dir():
                continue
            # Deepest first: a cgroup can be removed only when it has no children.
            for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()
        if not any(d.exists() for d in _cgroup_dirs(spec)):
            return
        time.sleep(0.1)


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def leftovers(spec: NodeSpec) -> list[str]:
    """What a stopped node left behind on the host; empty when clean."""
    found: list[str] = []
    if netns_exists(spec.netns):
        found.append(f"network namespace {spec.netns}")
    if _link_exists(spec.veth_host):
        found.append(f"interface {spec.veth_host}")
    found += [f"cgroup {d}" for d in _cgroup_dirs(spec) if d.exists()]
    found += [f"iptables rule {' '.join(r)}" for _t, r in _host_rules(spec.rule_tag)]
    found += [f"process {p}" for p in _pids_in(spec)]
    # Routes need no check: they leave with the veth.
    return found


# ---------------------------------------------------------------------------
# Waiting for the node
# ---------------------------------------------------------------------------


def wait_socket(path: Path, timeout: float, what: str, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(path))
                    return
                except OSError:
                    pass
        if not alive():
            raise LlmopsError(f"{what} exited before {path} answered")
        time.sleep(0.1)
    raise LlmopsError(f"timed out after {timeout:.0f}s waiting for {what} ({path})")


def import_images(spec: NodeSpec, archives: Sequence[Path]) -> None:
    """``ctr images import`` each OCI archive into the node's containerd (CRI namespace k8s.io)."""
    ctr = str(tools.require("ctr"))
    for archive in archives:
        _sh([ctr, "--address", str(spec.containerd_socket), "-n", "k8s.io", "images", "import", str(archive)],
            timeout=300)


def image_refs(spec: NodeSpec) -> list[str]:
    """References of the images in the node's containerd (CRI namespace k8s.io)."""
    out = _sh([str(tools.require("ctr")), "--address", str(spec.containerd_socket), "-n", "k8s.io", "images", "ls", "-q"])
    return [line.strip() for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# The supervisor (runs inside the node's network and mount namespaces)
# ---------------------------------------------------------------------------


def _mount(*argv: str) -> None:
    _sh(["mount", *argv])


def _prepare_mounts(spec: NodeSpec) -> None:
    _mount("--make-rslave", "/")
    _mount("-t", "tmpfs", "-o", "mode=755,size=256m", "tmpfs", "/run")
    Path("/run/netns").mkdir()
    _mount("--bind", str(spec.folder / "var-lib"), "/var/lib")
    _mount("--bind", str(spec.folder / "var-log"), "/var/log")
    for ctrl in CGROUP_V1:
        d = CGROUP_BASE / ctrl / spec.cgroup_root.lstrip("/")
        d.mkdir(exist_ok=True)
        if ctrl == "cpuset":
            # A v1 cpuset child starts empty; tasks cannot join it until filled.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (d / knob).write_text((CGROUP_BASE / ctrl / knob).read_text())


def _spawn(name: str, argv: list[str], spec: NodeSpec) -> subprocess.Popen[bytes]:
    log = (spec.logs / f"{name}.log").open("ab")
    print(f"starting {name}: {' '.join(argv)}", flush=True)
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def supervise(folder: Path) -> int:
    spec = NodeSpec.load(folder)
    if spec is None:
        print(f"no node.json in {folder}", file=sys.stderr)
        return 2
    stopping = False

    def on_term(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    _prepare_mounts(spec)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        containerd = _spawn("containerd", [str(tools.require("containerd")), "--config", str(folder / "containerd.toml")], spec)
        children.append(("containerd", containerd))
        wait_socket(spec.containerd_socket, START_TIMEOUT_S, "containerd", lambda: containerd.poll() is None)
        (folder / "containerd.ready").touch()
        kubelet = _spawn("kubelet", [
            str(tools.require("kubelet")),
            "--config", str(folder / "kubelet.yaml"),
            "--kubeconfig", str(folder / "kubeconfig"),
            "--hostname-override", spec.node_name,
            "--node-ip", spec.node_ip,
            "--node-labels", ",".join(f"{k}={v}" for k, v in spec.labels.items()),
        ], spec)  # fmt: skip
        children.append(("kubelet", kubelet))
        children.append(("kube-proxy", _spawn("kube-proxy", [
            str(tools.require("kube-proxy")), "--config", str(folder / "kube-proxy.yaml")], spec)))
        children.append(("coredns", _spawn("coredns", [
            str(tools.require("coredns")), "-conf", str(folder / "Corefile")], spec)))
        plugin_dir = Path("/var/lib/kubelet/device-plugins")
        wait_socket(plugin_dir / "kubelet.sock", START_TIMEOUT_S, "the kubelet", lambda: kubelet.poll() is None)
        children.append(("device-plugin", _spawn("device-plugin", [
            str(tools.require("llmops-device-plugin")), "--resource", "nvidia.com/gpu",
            "--count", str(spec.gpus), "--socket-dir", str(plugin_dir)], spec)))
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping the node", flush=True)
                    stopping = True
            time.sleep(0.2)
    except Exception as exc:  # noqa: BLE001 - logged for `cluster up` to show
        print(f"node supervisor failed: {exc}", flush=True)
    finally:
        for name, child in reversed(children):
            procs.stop_process(child, STOP_TIMEOUT_S)  # type: ignore[arg-type]
            print(f"stopped {name}", flush=True)
    return 0


def log_tail(spec: NodeSpec, lines: int = 8) -> str:
    out = []
    for log in sorted(spec.logs.glob("*.log")):
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
        if text:
            out.append(f"--- node {log.name}\n" + "\n".join(text))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops.cluster.node", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("supervise", help="run containerd, kubelet, device plugin and kube-proxy (inside the node's namespaces)")
    p.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    return supervise(args.folder)


if __name__ == "__main__":
    raise SystemExit(main())
