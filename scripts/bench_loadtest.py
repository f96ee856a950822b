#!/usr/bin/env python3
"""Benchmark: our Locust harness against GuideLLM on the same llm-d-inference-sim.

Usage: PYTHONPATH=src .venv/bin/python scripts/bench_loadtest.py [--duration 20] [--streams 4]

Needs `llmops tools install guidellm` (optional tool: torch + transformers in
a virtualenv of its own). Two parts, printed as figures and ratios:

1. Accuracy: one simulator at TTFT 100 ms / ITL 10 ms. GuideLLM (concurrent,
   N streams) and our harness (concurrency N) load it AT THE SAME TIME, so both
   see the same machine load; p50 TTFT and ITL of each, and ours/theirs.
   GuideLLM's `inter_token_latency_ms` is per request (latency - ttft) /
   (tokens - 1), which is what vllm bench serve calls TPOT; ours is reported
   both ways (pooled per-gap ITL and per-request TPOT).
2. Capacity: a simulator with zero latency; each tool alone at a saturating
   concurrency; completed streamed requests per second; ours/theirs. Ours is
   ONE Locust process; GuideLLM uses its default worker processes.

GuideLLM needs a tokenizer to build synthetic prompts; nothing can be
downloaded here, so a small byte-level BPE tokenizer is trained on the spot
(in GuideLLM's own virtualenv) and passed as its processor.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import yaml  # noqa: E402

from llmops import tools  # noqa: E402
from llmops.cluster import endpoints
from llmops.loadtest import harness  # noqa: E402

MODEL = "bench"
TOKENIZER_SCRIPT = """
import sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
words = ("the of and to in is was for on that with as by at from this be it are or an " * 50).split()
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator([" ".join(words[i:i + 20]) for i in range(0, len(words), 20)], trainer)
PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(sys.argv[1])
"""


def guidellm_python() -> Path:
    return tools.require("guidellm").resolve().parent / "python"


def make_tokenizer(work: Path) -> Path:
    out = work / "tokenizer"
    subprocess.run([str(guidellm_python()), "-c", TOKENIZER_SCRIPT, str(out)], check=True, capture_output=True)
    return out


def start_guidellm(work: Path, url: str, tokenizer: Path, profile: dict, seconds: float, prompt: int, output: int,
                   label: str) -> tuple[subprocess.Popen[bytes], Path]:  # fmt: skip
    result = work / f"guidellm-{label}.json"
    scenario = {
        "spec": {
            "backend": {"kind": "openai_http", "target": url, "model": MODEL, "request_format": "/v1/chat/completions"},
            "profile": profile,
            "tokenizer": {"kind": "huggingface_auto", "model": str(tokenizer)},
            "data": [{"kind": "synthetic_text", "prompt_tokens": prompt, "output_tokens": output}],
            "constraints": [{"kind": "max_duration", "seconds": seconds}],
            "outputs": [{"kind": "json", "path": str(result)}],
        }
    }
    path = work / f"scenario-{label}.json"
    path.write_text(json.dumps(scenario))
    log = (work / f"guidellm-{label}.log").open("wb")
    argv = [str(tools.require("guidellm")), "run", "--scenario", str(path), "--disable-console-interactive"]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), result


def guidellm_metrics(result: Path) -> dict[str, float]:
    bench = json.loads(result.read_text())["benchmarks"][0]
    m = bench["metrics"]
    ok = lambda name: m[name]["successful"]  # noqa: E731
    return {
        "ttft_p50": ok("time_to_first_token_ms")["median"],
        "itl_p50": ok("inter_token_latency_ms")["median"],
        "completed": ok("request_latency")["count"],
        "duration": bench["duration"],
        "rps": ok("request_latency")["count"] / bench["duration"],
    }


def requests_served(url: str) -> float:
    """The simulator's own count of finished requests (vllm:request_success_total), to see a tool start."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:request_success_total"))  # fmt: skip


def ours(work: Path, url: str, load: dict, prompt: int, output: int, label: str) -> dict[str, float]:
    profile = work / f"profile-{label}.yaml"
    profile.write_text(yaml.safe_dump({"name": label, "api": "chat", "stream": True, "prompt_tokens": prompt,
                                       "output_tokens": output, "load": load}))  # fmt: skip
    out = harness.execute(targets={MODEL: [url]}, profile=profile, slo_ref=None, report_dir=work / f"ours-{label}",
                          quiet=True, plots=False)  # fmt: skip
    s = out.summary
    return {"ttft_p50": s["median_ttft_ms"], "itl_p50": s["median_itl_ms"], "tpot_p50": s["median_tpot_ms"],
            "completed": s["completed"], "rps": s["request_throughput"], "failed": s["failed"]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds each measured run lasts")
    ap.add_argument("--streams", type=int, default=4, help="concurrency of the accuracy part (each tool)")
    ap.add_argument("--saturate", type=int, default=64, help="concurrency of the capacity part")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-loadtest-"))
    print(f"work dir {work}", flush=True)
    tokenizer = make_tokenizer(work)
    rows: list[str] = []
    with endpoints.EndpointManager(log_dir=work, registry=work / "endpoints.json") as mgr:
        # 1. accuracy, both tools at once against TTFT 100 ms / ITL 10 ms
        sim = mgr.start(endpoints.SimulatorConfig(model=MODEL, ttft_ms=100, itl_ms=10, max_num_seqs=256), group="accuracy")
        warm = 90.0  # GuideLLM imports torch first; ours starts once GuideLLM is sending
        proc, result = start_guidellm(work, sim.url, tokenizer, {"kind": "concurrent", "streams": args.streams},
                                      args.duration + 10, 64, 32, "accuracy")  # fmt: skip
        deadline = time.monotonic() + warm + 60
        while requests_served(sim.url) < args.streams and time.monotonic() < deadline:
            time.sleep(0.5)
        mine = ours(work, sim.url, {"shape": "concurrency", "users": args.streams, "duration": f"{args.duration}s"},
                    64, 32, "accuracy")  # fmt: skip
        proc.wait(timeout=300)
        theirs = guidellm_metrics(result)
        print(f"accuracy (configured TTFT 100 ms, ITL 10 ms; {args.streams} streams each, concurrently):")
        print(f"  ours:     p50 TTFT {mine['ttft_p50']:.2f} ms, p50 ITL {mine['itl_p50']:.3f} ms, "
              f"p50 TPOT {mine['tpot_p50']:.3f} ms, {mine['completed']} requests")  # fmt: skip
        print(f"  guidellm: p50 TTFT {theirs['ttft_p50']:.2f} ms, p50 ITL {theirs['itl_p50']:.3f} ms, {theirs['completed']} requests")
        r_ttft = mine["ttft_p50"] / theirs["ttft_p50"]
        r_itl = mine["itl_p50"] / theirs["itl_p50"]
        r_tpot = mine["tpot_p50"] / theirs["itl_p50"]
        print(f"  ratio ours/guidellm: TTFT {r_ttft:.3f}, ITL {r_itl:.3f} (our TPOT vs their ITL {r_tpot:.3f})")
        rows.append(f"| p50 TTFT (ms) | {mine['ttft_p50']:.2f} | {theirs['ttft_p50']:.2f} | {r_ttft:.3f} |")
        rows.append(f"| p50 ITL (ms) | {mine['itl_p50']:.3f} | {theirs['itl_p50']:.3f} | {r_itl:.3f} |")
        rows.append(f"| p50 TPOT (ours) vs ITL (GuideLLM, same definition) (ms) | {mine['tpot_p50']:.3f} | {theirs['itl_p50']:.3f} | {r_tpot:.3f} |")
        mgr.stop(sim)

        # 2. capacity: zero-latency simulator, each tool alone, saturating concurrency
        fast = mgr.start(endpoints.SimulatorConfig(model=MODEL, ttft_ms=0, itl_ms=0, max_num_seqs=1024), group="capacity")
        mine_cap = ours(work, fast.url, {"shape": "concurrency", "users": args.saturate, "duration": f"{args.duration}s"},
                        16, 16, "capacity")  # fmt: skip
        proc, result = start_guidellm(work, fast.url, tokenizer, {"kind": "concurrent", "streams": args.saturate},
                                      args.duration, 16, 16, "capacity")  # fmt: skip
        proc.wait(timeout=600)
        theirs_cap = guidellm_metrics(result)
        r_cap = mine_cap["rps"] / theirs_cap["rps"]
        print(f"capacity (zero-latency simulator, {args.saturate} concurrent streams, 16 output tokens):")
        print(f"  ours (1 Locust process): {mine_cap['rps']:.1f} req/s ({mine_cap['completed']} ok, {mine_cap['failed']} failed)")
        print(f"  guidellm:                {theirs_cap['rps']:.1f} req/s ({theirs_cap['completed']} ok)")
        print(f"  ratio ours/guidellm: {r_cap:.3f}")
        rows.append(f"| streamed req/s at {args.saturate} streams | {mine_cap['rps']:.1f} | {theirs_cap['rps']:.1f} | {r_cap:.3f} |")
    print("\n| figure | ours | GuideLLM 0.8.1 | ours/GuideLLM |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
