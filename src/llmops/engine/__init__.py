"""The real vLLM engine on the CPU: tiny model, vLLM's own argument parser, a server process.

The harness virtualenv has no torch; everything that needs vLLM, torch or
transformers runs as a script under the engine virtualenv's interpreter
(``vllm-python``, pinned as ``[tool.llmops.tools.vllm]`` in pyproject.toml).
The scripts below are plain text handed to that interpreter with ``-c``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from llmops import paths, poll, tools
from llmops.errors import LlmopsError, ToolError

ENGINE_TOOL = "vllm"
# Port range reserved for the engine tier and its benchmark (see docs/benchmarks.md).
PORT_RANGE = range(18100, 18200)

# The tiny model: random weights, 2 layers, hidden 128 with 2 heads so that
# head_dim is 64 (vLLM's CPU attention kernels reject head_dim 16).
TINY_MODEL_SPEC: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "vocab_size": 512,
    "seed": 1234,
}

# Byte-level BPE trained in memory on text made here, so nothing is downloaded;
# a chat template so /v1/chat/completions works; safetensors weights.
_BUILD_MODEL_SCRIPT = r'''
import json, random, sys
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

spec, out = json.loads(sys.argv[1]), sys.argv[2]
rng = random.Random(spec["seed"])
torch.manual_seed(spec["seed"])
words = ("the model serves tokens on a cluster of nodes with queues latency "
         "throughput scale replicas metrics kubernetes helm chart engine gpu cpu "
         "request stream user assistant system hello world answer question").split()
corpus = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) for _ in range(4000)]
special = ["<s>", "</s>", "<unk>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=spec["vocab_size"], special_tokens=special,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(corpus, trainer)
fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                               unk_token="<unk>", pad_token="<pad>", model_max_length=spec["max_position_embeddings"])
fast.chat_template = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
fast.save_pretrained(out)
config = LlamaConfig(
    vocab_size=len(fast), hidden_size=spec["hidden_size"], intermediate_size=spec["intermediate_size"],
    num_hidden_layers=spec["num_hidden_layers"], num_attention_heads=spec["num_attention_heads"],
    num_key_value_heads=spec["num_key_value_heads"], max_position_embeddings=spec["max_position_embeddings"],
    bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    tie_word_embeddings=False, torch_dtype="float32",
)
LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
print(json.dumps({"vocab": len(fast), "path": out}))
'''

# Parses many argument lists with vLLM's own OpenAI-server parser in one
# interpreter (importing vLLM costs seconds). Prints one JSON result per list.
_PARSE_ARGS_SCRIPT = r'''
import contextlib, io, json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser

def plain(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple, set)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return repr(v)

results = []
for argv in json.load(sys.stdin):
    parser = make_arg_parser(FlexibleArgumentParser())
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = parser.parse_args(argv)
    except SystemExit as exc:
        results.append({"ok": False, "exit": exc.code, "error": "\n".join(err.getvalue().strip().splitlines()[-3:])})
        continue
    try:
        # The server's own cross-field checks, run right after parsing.
        validate_parsed_serve_args(ns)
    except Exception as exc:
        results.append({"ok": False, "exit": None, "error": f"{type(exc).__name__}: {exc}"})
        continue
    # argparse accepts unambiguous prefixes (--enable-prefix-cachin): valid
    # today, ambiguous the day vLLM adds a flag. Report flags not spelt out.
    exact = set(parser._option_string_actions)
    inexact = [a.split("=", 1)[0] for a in argv if a.startswith("--") and a.split("=", 1)[0] not in exact]
    results.append({"ok": True, "values": {k: plain(v) for k, v in vars(ns).items()}, "inexact": inexact})
print("\n@@RESULTS@@" + json.dumps(results))
'''


def engine_python() -> Path:
    """The engine venv's interpreter, or a ToolError that says how to install it."""
    return tools.require(tools.load_specs()[ENGINE_TOOL].install_as)


def engine_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for engine processes: offline, small KV cache, caches outside the repo."""
    env = dict(os.environ)
    cache = paths.cache_root() / "engine-home"
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(cache / "hf"),
        VLLM_CACHE_ROOT=str(cache / "vllm"),
        VLLM_CPU_KVCACHE_SPACE=env.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop("PYTHONPATH", None)  # the harness's src/ must not shadow the engine venv
    if extra:
        env.update(extra)
    return env


def tiny_model_key() -> str:
    """Content key: the model spec, the build script and the engine venv's pins."""
    spec = tools.load_specs()[ENGINE_TOOL]
    blob = json.dumps(TINY_MODEL_SPEC, sort_keys=True) + _BUILD_MODEL_SCRIPT + tools.staged_fingerprint(spec)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tiny_model(timeout: float = 600) -> Path:
    """Path of the tiny model, generated on first use and reused (keyed by content).

    Concurrent callers (pytest-xdist workers) each build in a temporary folder
    and the first rename wins, so a reader never sees a half-written model.
    """
    root = paths.cache_root() / "models"
    target = root / f"tiny-llama-{tiny_model_key()}"
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        proc = subprocess.run(
            [str(engine_python()), "-c", _BUILD_MODEL_SCRIPT, json.dumps(TINY_MODEL_SPEC), str(tmp)],
            env=engine_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise ToolError(f"building the tiny model failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        (tmp / ".complete").write_text(proc.stdout)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class ParseResult:
    """vLLM's parser on one argument list: the namespace, or its error text."""

    argv: tuple[str, ...]
    ok: bool
    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    inexact: tuple[str, ...] = ()  # accepted flags that are abbreviations, not vLLM's spelling


def parse_engine_args(arg_lists: Sequence[Sequence[str]], timeout: float = 300) -> list[ParseResult]:
    """Parse each argument list with vLLM's own OpenAI-server parser (one interpreter for all)."""
    proc = subprocess.run(
        [str(engine_python()), "-c", _PARSE_ARGS_SCRIPT],
        input=json.dumps([list(a) for a in arg_lists]),
        env=engine_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    marker = "@@RESULTS@@"
    if proc.returncode != 0 or marker not in proc.stdout:
        raise ToolError(f"vLLM's argument parser did not run (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    raw = json.loads(proc.stdout.rsplit(marker, 1)[1])
    return [
        ParseResult(tuple(argv), r["ok"], r.get("values", {}), r.get("error", ""), tuple(r.get("inexact", ())))
        for argv, r in zip(arg_lists, raw, strict=True)
    ]


_LEASES: dict[int, int] = {}


def free_port(ports: range = PORT_RANGE) -> int:
    """First port of ``ports`` that nobody listens on and no other session has leased; lease it.

    vLLM binds its port only after loading the model (a minute or more), so
    a bind test alone leaves a window in which a second test session on the
    same machine picks the same port, its own server fails to bind, and its
    tests talk to the first session's server. The lease is an flock on
    ``<cache>/locks/port-N``, held until :func:`release_port` or process exit.
    """
    lock_dir = paths.cache_root() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for port in ports:
        if port in _LEASES:
            continue
        fd = os.open(lock_dir / f"port-{port}", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                os.close(fd)
                continue
        _LEASES[port] = fd
        return port
    raise LlmopsError(f"no free port in {ports.start}-{ports.stop - 1}; stop stray engine servers")


def release_port(port: int) -> None:
    """Give back a port leased by :func:`free_port` (no-op for a port this process did not lease)."""
    fd = _LEASES.pop(port, None)
    if fd is not None:
        os.close(fd)


def replace_option(argv: Sequence[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option``'s value replaced (``--opt v`` or ``--opt=v``), or appended if absent."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == option and i + 1 < len(out):
            out[i + 1] = value
            return out
        if arg.startswith(option + "="):
            out[i] = f"{option}={value}"
            return out
    return [*out, option, value]


class EngineServer:
    """A real ``vllm.entrypoints.openai.api_server`` process on loopback.

    Use as a context manager; ``stop()`` terminates the whole process group
    (the engine core runs as a child process).
    """

    def __init__(self, args: Sequence[str], port: int, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.args = replace_option(replace_option(args, "--host", "127.0.0.1"), "--port", str(port))
        self.port = port
        self.log = log
        self.env = engine_env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> EngineServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(engine_python()), "-m", "vllm.entrypoints.openai.api_server", *self.args]
        started = time.monotonic()
        with self.log.open("wb") as fh:
            fh.write((" ".join(argv) + "\n").encode())
            fh.flush()
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, timeout: float) -> None:
        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise LlmopsError(
                    f"vLLM server exited with {self.proc.returncode} before /health answered; "
                    f"last log lines ({self.log}):\n{self.tail()}"
                )
            return poll.http_ok(f"{self.url}/health")

        poll.until(f"{self.url}/health", healthy, timeout=timeout, interval=0.5, describe=lambda: f"log tail:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def stop(self, grace: float = 20) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # Signal the group even if the API server already exited: the engine
        # core is a child process in the same session and must not outlive it.
        def group_gone() -> bool:
            proc.poll()  # reap the leader so the group can empty
            return not _group_alive(proc.pid)

        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                poll.until(f"engine process group {proc.pid} to exit after {sig.name}", group_gone, timeout=wait,
                           interval=0.2)
                break
            except poll.PollTimeout:
                continue
        proc.poll()
        release_port(self.port)

    def __enter__(self) -> EngineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True



def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition: (series name, labels, value), via prometheus_client's parser."""
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of series ``name`` whose labels include ``labels``."""
    return sum(
        value for series, have, value in parse_metrics(text)
        if series == name and all(have.get(k) == v for k, v in labels.items())
    )
