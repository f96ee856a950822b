"""`llmops engine args|serve`: the real vLLM engine (engine venv, pinned as tools.vllm)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from llmops import engine, paths
from llmops.engine import engine_args
from llmops.validate import render


def register(sub: Any) -> None:
    parser = sub.add_parser("engine", help="the real vLLM engine: argument conformance, a local server")
    esub = parser.add_subparsers(dest="engine_command", metavar="ACTION", required=True)

    p_args = esub.add_parser(
        "args",
        help="parse the engine args each environment renders with vLLM's own parser; exit 1 on findings",
        description="For every vllm model of each values file: render the umbrella, parse the engine "
        "container args with vLLM's server parser (engine venv), check each typed value reached its "
        "option, and name the values path of anything vLLM rejects.",
    )
    p_args.add_argument("values", nargs="*", type=Path, help="environment files (default: values/*.yaml)")
    p_args.add_argument("--verbose", "-v", action="store_true", help="print the parsed argv of each model")
    p_args.set_defaults(func=_args)

    p_serve = esub.add_parser(
        "serve",
        help="run vLLM on the CPU with the args a values file renders, serving the tiny generated model",
    )
    p_serve.add_argument("--values", type=Path, default=paths.VALUES_DIR / "local-vllm.yaml")
    p_serve.add_argument("--model-name", help="which model entry to serve (default: the first)")
    p_serve.add_argument("--port", type=int, default=engine.PORT_RANGE.start, help="loopback port (default 18100)")
    p_serve.set_defaults(func=_serve)


def _args(args: argparse.Namespace) -> int:
    files = args.values or sorted(paths.VALUES_DIR.glob("*.yaml"))
    findings = engine_args.check(files)
    for f in findings:
        print(f"{'ok  ' if f.ok else 'FAIL'} {Path(f.env).name} model {f.model}")
        for problem in f.problems:
            print(f"     {problem}")
        if args.verbose:
            print(f"     argv: {' '.join(f.argv)}")
    if not findings:
        print("no environment serves a model with engine: vllm")
    return 0 if all(f.ok for f in findings) else 1


def _serve(args: argparse.Namespace) -> int:
    values = engine_args.vllm_values([args.values])
    containers = engine_args.engine_containers(render.render("llmops-stack", [args.values]))
    name = args.model_name or next(iter(containers), None)
    if values.get("engine") != "vllm" or name not in containers:
        print(f"error: {args.values} renders no vllm engine for model {name!r} (engine: {values.get('engine')})",
              file=sys.stderr)  # fmt: skip
        return 2
    container = containers[name]
    argv = engine_args.parser_argv([str(x) for x in values.get("vllmCommand") or []], container.get("args", []))
    argv = engine.replace_option(argv, "--model", str(engine.tiny_model()))
    log = paths.cache_root() / "logs" / f"engine-serve-{args.port}.log"
    server = engine.EngineServer(argv, port=args.port, log=log, env=engine_args.host_env(container))
    print(f"starting vLLM ({log}) ...", flush=True)
    server.start(timeout=900)
    print(f"ready in {server.startup_seconds:.0f}s: {server.url}/v1 (Ctrl-C stops it)", flush=True)
    stop = False

    def _handler(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    try:
        while not stop and server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0
