"""llmops.engine.engine_args and the engine helpers that need no engine venv: merging, expectations, locating errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llmops import engine, paths
from llmops.engine import engine_args

LOCAL_VLLM = paths.VALUES_DIR / "local-vllm.yaml"


def test_vllm_values_are_helms_computed_values_with_the_overlay_on_top() -> None:
    # Helm coalesces: maps merge key by key, a list replaces, and the umbrella's own defaults sit between.
    overlay = {"vllm": {"modelDefaults": {"extraArgs": ["--x"], "dtype": "bfloat16"}}}
    values = engine_args.vllm_values([LOCAL_VLLM], overlay)
    assert values["modelDefaults"]["extraArgs"] == ["--x"] and values["modelDefaults"]["dtype"] == "bfloat16"
    assert values["modelDefaults"]["maxModelLen"] == 512, "keys the overlay does not name keep the file's value"
    assert values["engine"] == "vllm" and values["global"]["environment"] == "local"  # globals copied in, as Helm does


def test_model_entry_overrides_model_defaults_and_nested_maps_merge_one_level() -> None:
    values = {
        "modelDefaults": {"dtype": "auto", "gpu": {"count": 0, "product": ""}, "extraArgs": ["--a"]},
        "models": [{"name": "m", "gpu": {"count": 2}, "extraArgs": ["--b"]}],
    }
    (model,) = engine_args.resolved_models(values)
    assert model["gpu"] == {"count": 2, "product": ""}
    assert model["extraArgs"] == ["--b"]
    assert model["servedModelName"] == "m", "servedModelName defaults to the model name"


def test_local_vllm_expectations_come_from_the_file_and_name_their_values_path() -> None:
    values = engine_args.vllm_values([LOCAL_VLLM])
    got = {e.dest: (e.value, e.values_path) for e in engine_args.expectations(values, 0)}
    assert got["dtype"] == ("float32", "vllm.modelDefaults.dtype")
    assert got["max_model_len"] == (512, "vllm.modelDefaults.maxModelLen")
    assert got["served_model_name"] == (["tiny-llm"], "vllm.models[0].servedModelName")
    assert "gpu_memory_utilization" not in got, "no GPU: the chart must not pass --gpu-memory-utilization"


def test_gpu_memory_utilization_is_expected_only_with_gpus() -> None:
    overlay = {"vllm": {"modelDefaults": {"gpu": {"count": 1}, "gpuMemoryUtilization": 0.85}}}
    values = engine_args.vllm_values([LOCAL_VLLM], overlay)
    got = {e.dest: e.value for e in engine_args.expectations(values, 0)}
    assert got["gpu_memory_utilization"] == 0.85 and isinstance(got["gpu_memory_utilization"], float)


@pytest.mark.parametrize(
    ("error", "tokens"),
    [
        ("prog: error: unrecognized arguments: --gpu-memory-utilisation 0.5", ["--gpu-memory-utilisation", "0.5"]),
        ("prog: error: argument --kv-cache-dtype: invalid choice: 'fp9' (choose from ...)", ["--kv-cache-dtype"]),
        ("prog: error: argument --max-num-seqs/-n: invalid int value: 'x'", ["--max-num-seqs"]),
    ],
)
def test_rejected_tokens_reads_argparse_errors(error: str, tokens: list[str]) -> None:
    assert engine_args.rejected_tokens(error) == tokens


def test_locate_names_the_extra_args_entry_of_the_model_that_set_it() -> None:
    values = {"modelDefaults": {"extraArgs": ["--ok"]}, "models": [{"name": "a"}, {"name": "b", "extraArgs": ["--x", "1", "--typo=3"]}]}
    error = "error: unrecognized arguments: --typo=3"
    assert engine_args.locate(error, values, 1) == ["vllm.models[1].extraArgs[2]"]
    assert engine_args.locate("error: unrecognized arguments: --ok", values, 0) == ["vllm.modelDefaults.extraArgs[0]"]


def test_locate_maps_a_typed_flag_back_to_its_value() -> None:
    values = {"modelDefaults": {"kvCacheDtype": "fp9"}, "models": [{"name": "a"}]}
    error = "error: argument --kv-cache-dtype: invalid choice: 'fp9'"
    assert engine_args.locate(error, values, 0) == ["vllm.modelDefaults.kvCacheDtype"]


def test_parser_argv_drops_the_launcher_vllm_serve_or_the_server_module_only() -> None:
    assert engine_args.parser_argv(["vllm", "serve"], ["--model", "m"]) == ["--model", "m"]
    server = ["/opt/venv/bin/python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert engine_args.parser_argv(server, ["--model", "m"]) == ["--model", "m"]
    assert engine_args.parser_argv(["python3", "-m", "x"], ["--a"]) == ["python3", "-m", "x", "--a"]
    assert engine_args.parser_argv(["sh", "-m", "vllm.entrypoints.openai.api_server"], []) == [
        "sh", "-m", "vllm.entrypoints.openai.api_server"]


def test_replace_option_rewrites_both_spellings_or_appends() -> None:
    assert engine.replace_option(["--model", "/a", "--x"], "--model", "/b") == ["--model", "/b", "--x"]
    assert engine.replace_option(["--model=/a"], "--model", "/b") == ["--model=/b"]
    assert engine.replace_option(["--x"], "--host", "127.0.0.1") == ["--x", "--host", "127.0.0.1"]


def test_metric_total_sums_matching_label_sets_only() -> None:
    text = (
        "# HELP vllm:generation_tokens_total x\n"
        'vllm:generation_tokens_total{engine="0",model_name="a"} 10.0\n'
        'vllm:generation_tokens_total{engine="1",model_name="a"} 5.0\n'
        'vllm:generation_tokens_total{engine="0",model_name="b"} 7.0\n'
        "vllm:generation_tokens_created 1.7e9\n"
    )
    assert engine.metric_total(text, "vllm:generation_tokens_total", model_name="a") == 15.0
    assert engine.metric_total(text, "vllm:generation_tokens_total") == 22.0


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_free_port_skips_a_port_in_use(isolated_cache: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        got = engine.free_port(range(port, port + 50))
        engine.release_port(got)
        assert got != port


def test_a_leased_port_is_not_handed_out_again_until_released(isolated_cache: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    ports = range(base, base + 20)
    first = engine.free_port(ports)
    second = engine.free_port(ports)
    try:
        assert first != second, "a lease must keep the port from the next caller until the server binds it"
        # Another process (another test session) sees the lease too.
        code = (
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
            "except OSError:\n    print('leased')"
        )
        lock = isolated_cache / "locks" / f"port-{first}"
        out = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "leased"
    finally:
        engine.release_port(first)
        engine.release_port(second)
    assert engine.free_port(ports) == first, "released ports are handed out again"
    engine.release_port(first)


# Renders whose engine containers run on the host in some tier (local-vllm in
# the engine tier) or share its template; production files need an overlay of
# real digests to render at all, and carry the same template env.
HOST_RENDERS = [
    ("llmops-stack", ()),
    ("llmops-stack", (LOCAL_VLLM,)),
    ("llmops-stack", (paths.VALUES_DIR / "staging.yaml",)),
    *[("vllm", (f,)) for f in sorted((paths.CHARTS_DIR / "vllm" / "ci").glob("*-values.yaml"))],
]


@pytest.mark.parametrize("chart,values", HOST_RENDERS, ids=lambda x: x if isinstance(x, str) else "+".join(p.name for p in x) or "defaults")
def test_host_env_moves_every_rendered_pod_path_under_the_host_root(chart: str, values: tuple[Path, ...], tmp_path: Path) -> None:
    from llmops.validate import render

    containers = engine_args.engine_containers(render.render(chart, values, helm="helm3"))
    assert containers, f"{chart} {values} renders no engine container"
    for model, c in containers.items():
        env = engine_args.host_env(c, tmp_path)
        # Independent of how host_env finds pod paths: no absolute path may
        # reach the host process unless it is under the host root.
        leaked = {k: v for k, v in env.items() if v.startswith("/") and not v.startswith(str(tmp_path) + "/")}
        assert not leaked, f"{model}: pod paths passed to the host process unchanged: {leaked}"
        literal = {str(e["name"]) for e in c.get("env") or [] if "value" in e}
        assert set(env) == literal, "every literal env var reaches the host, substituted or not"
        assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "numba")
        assert env["HOME"] == str(tmp_path / "home" / "vllm")


def test_pod_path_env_is_every_value_under_a_mount_and_nothing_else(tmp_path: Path) -> None:
    container = {
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}, {"name": "models", "mountPath": "/models/m/"}],
        "env": [
            {"name": "NEW_CACHE_DIR", "value": "/cache/new"},  # a path var no list names
            {"name": "MODEL_DIR", "value": "/models/m"},
            {"name": "CACHE_LIKE", "value": "/cachex/other"},  # a prefix of a mount is not inside it
            {"name": "URL", "value": "http://otel:4317/cache"},
            {"name": "VLLM_CPU_KVCACHE_SPACE", "value": "1"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    }
    assert engine_args.pod_path_env(container) == {"NEW_CACHE_DIR": "/cache/new", "MODEL_DIR": "/models/m"}
    env = engine_args.host_env(container, tmp_path)
    assert env == {
        "NEW_CACHE_DIR": str(tmp_path / "cache" / "new"),
        "MODEL_DIR": str(tmp_path / "models" / "m"),
        "CACHE_LIKE": "/cachex/other",
        "URL": "http://otel:4317/cache",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    assert (tmp_path / "cache").is_dir() and (tmp_path / "models" / "m").is_dir()


def test_local_vllm_runs_the_vllm_cpu_image_built_here_with_its_weights_on_a_read_only_claim() -> None:
    from llmops.cluster import images
    from llmops.validate import render

    manifests = render.render("llmops-stack", [LOCAL_VLLM], helm="helm3")
    (dep,) = [m.obj for m in manifests if m.kind == "Deployment" and m.obj["metadata"]["name"].endswith("-tiny")]
    pod = dep["spec"]["template"]["spec"]
    (engine_c,) = pod["containers"]
    # Built here (llmops.cluster.images, on demand) and imported into the real node, never pulled.
    assert engine_c["image"] == images.ref("vllm-cpu")
    assert engine_args.parser_argv(engine_c["command"], ["--x"]) == ["--x"], "the launcher must be vLLM's server"
    (model_mount,) = [v for v in engine_c["volumeMounts"] if v["name"] == "model"]
    assert model_mount["readOnly"] and model_mount["subPath"] == "tiny-llama"
    (model_vol,) = [v for v in pod["volumes"] if v["name"] == "model"]
    assert model_vol["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert not any("hostPath" in v for v in pod["volumes"]), "hostPath is refused under Pod Security restricted"
    tests = [m.obj for m in manifests if m.kind == "Pod" and m.obj["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert tests and all(p["spec"]["containers"][0]["image"] == images.ref("python") for p in tests)
