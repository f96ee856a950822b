"""The real node's names, addresses and generated configs; no namespace or process is created here."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from llmops import cluster
from llmops.cluster import node
from llmops.errors import LlmopsError


def _spec(tmp_path: Path, name: str = "llmops-c", base: int = 16030) -> node.NodeSpec:
    return node.NodeSpec.for_cluster(name, base, tmp_path / name, block=cluster.port_block(base))


def test_two_clusters_on_different_port_blocks_get_disjoint_node_pod_and_service_networks(tmp_path: Path) -> None:
    a, b = _spec(tmp_path, "a", 16030), _spec(tmp_path, "b", 16080)
    nets = lambda s: [ipaddress.ip_network(c, strict=False) for c in (s.pod_cidr, s.service_cidr, f"{s.node_ip}/30")]  # noqa: E731
    assert not any(x.overlaps(y) for x in nets(a) for y in nets(b))
    assert a.netns != b.netns and a.veth_host != b.veth_host and a.cgroup_root != b.cgroup_root


def test_node_addresses_are_private_and_the_host_and_node_share_one_slash_30(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    link = ipaddress.ip_network(f"{s.host_ip}/30", strict=False)
    assert ipaddress.ip_address(s.node_ip) in link
    for cidr in (s.pod_cidr, s.service_cidr):
        assert ipaddress.ip_network(cidr).is_private
    assert ipaddress.ip_address(s.pod_gateway) in ipaddress.ip_network(s.pod_cidr)
    assert ipaddress.ip_address(s.kubernetes_service_ip) in ipaddress.ip_network(s.service_cidr)


def test_interface_names_fit_the_kernel_limit_and_every_name_carries_the_cluster(tmp_path: Path) -> None:
    s = _spec(tmp_path, "a-rather-long-cluster-name-for-the-autoscaling-stack")
    assert len(s.veth_host) <= 15 and len(s.veth_peer) <= 15
    assert s.cluster in s.netns and s.cluster in s.cgroup_root and s.cluster in s.rule_tag
    assert s.node_name.startswith(s.cluster)


def test_spec_round_trips_through_its_file_so_down_finds_a_killed_node(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    s.save()
    assert node.NodeSpec.load(s.folder) == s
    assert node.NodeSpec.load(tmp_path / "nothing") is None


def test_gpu_count_and_product_round_trip_and_a_spec_file_without_them_gets_the_defaults(tmp_path: Path) -> None:
    s = node.NodeSpec.for_cluster("g", 16030, tmp_path / "g", block=3, gpus=6, gpu_product=cluster.H100_PRODUCT)
    s.save()
    assert node.NodeSpec.load(s.folder) == s
    raw = json.loads(s.spec_file.read_text())
    del raw["gpus"], raw["gpu_product"]  # written before the node had them
    s.spec_file.write_text(json.dumps(raw))
    old = node.NodeSpec.load(s.folder)
    assert old is not None and (old.gpus, old.gpu_product) == (node.FAKE_GPUS, "")


def test_node_gets_gpu_feature_discovery_labels_only_with_a_product(tmp_path: Path) -> None:
    plain = _spec(tmp_path)
    assert plain.labels == {node.POOL_LABEL: node.NODE_LABEL_POOL, "llmops.io/real-node": "true"}
    h100 = node.NodeSpec.for_cluster("h", 16030, tmp_path / "h", block=3, gpus=6, gpu_product=cluster.H100_PRODUCT)
    assert h100.labels[cluster.GPU_PRODUCT_LABEL] == cluster.H100_PRODUCT
    assert h100.labels["nvidia.com/gpu.count"] == "6" and h100.labels["nvidia.com/gpu.present"] == "true"
    assert h100.labels[node.POOL_LABEL] == node.NODE_LABEL_POOL


@pytest.mark.parametrize("gpus", [0, -1, node.MAX_FAKE_GPUS + 1])
def test_a_gpu_count_outside_the_device_plugins_range_is_refused_naming_the_flag(tmp_path: Path, gpus: int) -> None:
    with pytest.raises(LlmopsError, match="--node-gpus"):
        node.NodeSpec.for_cluster("g", 16030, tmp_path / "g", block=3, gpus=gpus)


def test_kubelet_config_carries_the_facts_this_machine_needs(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    cfg = node.kubelet_config(s, tmp_path / "ca.crt")
    assert cfg["failCgroupV1"] is False and cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["cgroupRoot"] == s.cgroup_root
    assert cfg["containerRuntimeEndpoint"] == f"unix://{s.containerd_socket}"
    assert cfg["address"] == s.node_ip and cfg["readOnlyPort"] == 0
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["registerWithTaints"] == [node.REAL_NODE_TAINT]
    assert cfg["clusterDNS"] == [s.node_ip]
    # Imported images cannot be pulled again: image GC must never collect them.
    assert cfg["imageGCHighThresholdPercent"] == 100


def test_containerd_config_is_private_to_the_cluster_and_restricts_oom_score_adj(tmp_path: Path) -> None:
    import tomllib

    s = _spec(tmp_path)
    cfg = tomllib.loads(node.containerd_config(s, "localhost/llmops/pause:1"))
    assert cfg["grpc"]["address"] == str(s.containerd_socket)
    assert cfg["root"].startswith(str(s.folder)) and cfg["state"] == "/run/containerd"
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/llmops/pause:1"
    assert cri["cni"]["conf_dir"].startswith(str(s.folder))


def test_cni_bridge_never_masquerades_and_allocates_only_the_clusters_pod_range(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    bridge = node.cni_config(s)["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": s.pod_cidr, "gateway": s.pod_gateway}]]
    assert bridge["ipam"]["dataDir"].startswith(str(s.folder))


def test_kube_proxy_runs_iptables_mode_and_leaves_machine_wide_conntrack_sysctls_alone(tmp_path: Path) -> None:
    cfg = node.kube_proxy_config(_spec(tmp_path))
    assert cfg["mode"] == "iptables" and cfg["iptables"]["masqueradeAll"] is True
    assert cfg["conntrack"]["maxPerCore"] == 0 and cfg["iptables"]["localhostNodePorts"] is False


def test_node_kubeconfig_points_at_the_host_end_of_the_veth(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    admin = tmp_path / "admin.yaml"
    admin.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:16030"}}]}))
    out = node.kubeconfig(s, admin)
    assert out["clusters"][0]["cluster"]["server"] == f"https://{s.host_ip}:16030"


def test_kwok_manages_only_its_annotated_nodes_and_the_api_server_advertises_the_veth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.tools, "require", lambda name: Path("/bin") / name)
    s = _spec(tmp_path)
    config = cluster.kwokctl_config(cluster.Ports.from_base(16030), [], s)[0]
    patches = {p["name"]: {a["key"]: a["value"] for a in p["extraArgs"]} for p in config["componentsPatches"]}
    assert patches["kwok-controller"] == {"manage-all-nodes": "false",
                                          "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake"}
    assert patches["kube-apiserver"]["advertise-address"] == s.host_ip
    assert patches["kube-apiserver"]["service-cluster-ip-range"] == s.service_cidr
    assert s.host_ip in config["options"]["kubeApiserverCertSANs"]
    kwok_only = cluster.kwokctl_config(cluster.Ports.from_base(16030), [], None)[0]
    assert [p["name"] for p in kwok_only["componentsPatches"]] == ["kwok-controller"]


@pytest.mark.parametrize("raw", ["2", "-1", "yes"])
def test_real_node_count_other_than_zero_or_one_is_refused_naming_the_flag(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.REAL_NODES_ENV, raw)
    with pytest.raises(LlmopsError, match="--real-nodes"):
        cluster.real_node_count(None)


def test_real_node_count_defaults_to_one_and_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster.REAL_NODES_ENV, raising=False)
    assert cluster.real_node_count(None) == 1
    monkeypatch.setenv(cluster.REAL_NODES_ENV, "0")
    assert cluster.real_node_count(None) == 0 and cluster.real_node_count(1) == 1


def test_preflight_names_a_leftover_namespace_and_the_command_that_removes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _spec(tmp_path)
    monkeypatch.setattr(node, "netns_exists", lambda name: name == s.netns)
    with pytest.raises(LlmopsError) as err:
        node.preflight(s)
    assert f"network namespace {s.netns} already exists" in str(err.value)
    assert f"llmops cluster down --name {s.cluster}" in str(err.value)


def test_write_configs_puts_every_file_under_the_node_folder(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    admin = tmp_path / "admin.yaml"
    admin.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}]}))
    node.write_configs(s, admin, tmp_path / "ca.crt", "localhost/llmops/pause:1")
    written = {p.name for p in s.folder.iterdir()}
    assert {"containerd.toml", "kubelet.yaml", "kube-proxy.yaml", "kubeconfig", "node.json", "cni"} <= written
    assert json.loads((s.folder / "cni" / "10-llmops.conflist").read_text())["name"] == "llmops"


def test_cluster_dns_serves_only_cluster_zones_from_the_node_address_and_forwards_nothing(tmp_path: Path) -> None:
    s = _spec(tmp_path)
    text = node.corefile(s)
    assert f"bind {s.node_ip}" in text and "kubernetes cluster.local" in text
    assert "forward" not in text and ".:53" not in text


def test_namespace_annotations_select_the_real_node_and_tolerate_exactly_its_taint() -> None:
    ann = node.namespace_annotations()
    assert ann["scheduler.alpha.kubernetes.io/node-selector"] == f"{cluster.POOL_LABEL}=real"
    (toleration,) = json.loads(ann["scheduler.alpha.kubernetes.io/defaultTolerations"])
    assert {k: toleration[k] for k in ("key", "value", "effect")} == node.REAL_NODE_TAINT
    assert node.POOL_LABEL == cluster.POOL_LABEL


def test_the_api_server_enables_the_admission_plugins_the_annotations_need(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.tools, "require", lambda name: Path("/bin") / name)
    config = cluster.kwokctl_config(cluster.Ports.from_base(16030), [], _spec(tmp_path))[0]
    (api,) = [p for p in config["componentsPatches"] if p["name"] == "kube-apiserver"]
    args = {a["key"]: a["value"] for a in api["extraArgs"]}
    assert set(args["enable-admission-plugins"].split(",")) >= {"PodNodeSelector", "PodTolerationRestriction"}
    # kwokctl's "override" only rewrites flags it already passes: ours are appended (the last flag wins).
    assert not any(a["override"] for p in config["componentsPatches"] for a in p["extraArgs"])
    assert args["kubelet-preferred-address-types"] == "InternalIP"
