"""The real vLLM server, started with exactly the args the chart renders for values/local-vllm.yaml.

One server per session (conftest.vllm_server). The Locust harness runs a short
mixed profile (loadtests/profiles/engine-cpu.yaml) against it with CPU-sized
SLOs (loadtests/slo/engine-cpu.yaml); the tests then check what the clients
saw against what the server counted on /metrics.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from llmops import engine, paths

if TYPE_CHECKING:
    from conftest import LoadRun, RenderedEngine

# One vLLM server per session: under `make test` (xdist, --dist loadgroup) all
# engine tests run on one worker so only one server starts.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("vllm-engine")]
MODEL = "tiny-llm"  # servedModelName in values/local-vllm.yaml
PROFILE = paths.REPO_ROOT / "loadtests" / "profiles" / "engine-cpu.yaml"


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_server_lists_the_served_model_name_the_chart_rendered(vllm_server: engine.EngineServer) -> None:
    with urllib.request.urlopen(f"{vllm_server.url}/v1/models", timeout=10) as resp:
        models = [m["id"] for m in json.loads(resp.read())["data"]]
    assert models == [MODEL]


def test_load_meets_cpu_slos_without_errors(load_run: LoadRun) -> None:
    assert load_run.outcome.summary["requests"] >= 10, load_run.outcome.summary
    assert load_run.outcome.ok, "\n".join(load_run.outcome.breaches())
    failed = [s for s in load_run.samples if not s.ok]
    assert not failed, f"{len(failed)} failed requests, first: {failed[0].status} {failed[0].error}"


def test_streamed_responses_arrive_in_several_chunks(load_run: LoadRun) -> None:
    streamed = [s for s in load_run.samples if s.stream and s.ok]
    assert len(streamed) >= 5, "the profile streams 3/4 of its requests"
    for s in streamed:
        assert s.ttft_ms is not None and 0 < s.ttft_ms <= s.e2el_ms
        # vLLM merges pending tokens into one chunk when the client lags, so a
        # stream may have fewer chunks than tokens, never more.
        assert len(s.itl_ms) <= s.output_tokens - 1, (len(s.itl_ms), s.output_tokens)
    gaps = sum(len(s.itl_ms) for s in streamed)
    assert gaps >= len(streamed), f"streams average under 2 chunks ({gaps} gaps in {len(streamed)} streams)"
    assert any(not s.stream for s in load_run.samples), "the profile also sends non-streamed requests"


def test_usage_under_load_matches_the_servers_counters_up_to_aborted_requests(load_run: LoadRun) -> None:
    def delta(name: str) -> float:
        return engine.metric_total(load_run.after, name, model_name=MODEL) - engine.metric_total(
            load_run.before, name, model_name=MODEL
        )

    ok = [s for s in load_run.samples if s.ok]
    assert all(s.output_tokens >= 1 and s.input_tokens >= 1 for s in ok)
    client_out, server_out = sum(s.output_tokens for s in ok), delta("vllm:generation_tokens_total")
    # Locust stops its users mid-request: the server counted tokens of at most
    # one aborted request per user (<= the profile's max output) no client saw.
    profile = yaml.safe_load(PROFILE.read_text())
    users, max_out = int(profile["load"]["users"]), int(profile["output_tokens"]["max"])
    assert client_out <= server_out <= client_out + users * max_out, (client_out, server_out)
    client_in, server_in = sum(s.input_tokens for s in ok), delta("vllm:prompt_tokens_total")
    assert client_in <= server_in, (client_in, server_in)


def _sse_usage(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Stream a request; return (content chunks, the final usage block)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    chunks, usage = 0, {}
    with urllib.request.urlopen(req, timeout=120) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            event = json.loads(line[5:])
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content") or choice.get("text"):
                    chunks += 1
    return chunks, usage


def test_usage_blocks_add_up_exactly_to_the_servers_token_counters(
    vllm_server: engine.EngineServer, load_run: LoadRun
) -> None:
    before = vllm_server.metrics()
    prompt = completion = 0
    for i in range(3):
        chat = {"model": MODEL, "messages": [{"role": "user", "content": f"count the replicas {i}"}],
                "max_tokens": 6 + i, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
        chunks, usage = _sse_usage(f"{vllm_server.url}/v1/chat/completions", chat)
        assert usage["completion_tokens"] == 6 + i and 1 <= chunks <= 6 + i, (chunks, usage)
        status, body = _post(f"{vllm_server.url}/v1/completions",
                             {"model": MODEL, "prompt": f"the queue {i}", "max_tokens": 4, "ignore_eos": True})  # fmt: skip
        assert status == 200, body
        for u in (usage, body["usage"]):
            prompt += u["prompt_tokens"]
            completion += u["completion_tokens"]
    after = vllm_server.metrics()

    def delta(name: str) -> float:
        return engine.metric_total(after, name, model_name=MODEL) - engine.metric_total(before, name, model_name=MODEL)

    assert completion == delta("vllm:generation_tokens_total") == 3 * 4 + 6 + 7 + 8
    assert prompt == delta("vllm:prompt_tokens_total")
    assert delta("vllm:request_success_total") == 6


def test_max_tokens_caps_completion_tokens_in_usage(vllm_server: engine.EngineServer) -> None:
    status, body = _post(
        f"{vllm_server.url}/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hello cluster"}], "max_tokens": 5,
         "ignore_eos": True},
    )  # fmt: skip
    assert status == 200, body
    assert body["usage"]["completion_tokens"] == 5
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5


def test_unknown_model_is_a_404_with_an_openai_error(vllm_server: engine.EngineServer) -> None:
    status, body = _post(f"{vllm_server.url}/v1/completions", {"model": "no-such-model", "prompt": "hi", "max_tokens": 2})
    assert status == 404
    assert "no-such-model" in json.dumps(body["error"])


def test_request_beyond_max_model_len_is_a_400_not_a_crash(vllm_server: engine.EngineServer) -> None:
    # local-vllm.yaml sets maxModelLen 512: asking for 600 new tokens cannot fit.
    status, body = _post(f"{vllm_server.url}/v1/completions", {"model": MODEL, "prompt": "hello", "max_tokens": 600})
    assert status == 400, body
    assert "error" in body
    with urllib.request.urlopen(f"{vllm_server.url}/health", timeout=10) as resp:
        assert resp.status == 200


def test_rendered_probes_answer_on_the_real_server_within_their_budgets(
    vllm_server: engine.EngineServer, local_vllm_rendered: RenderedEngine
) -> None:
    container = local_vllm_rendered.container
    (port,) = [p for p in container["ports"] if p["name"] == "http"]
    args = local_vllm_rendered.args
    assert args[args.index("--port") + 1] == str(port["containerPort"]), "probes target the port vLLM listens on"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        path = probe["httpGet"]["path"]
        with urllib.request.urlopen(f"{vllm_server.url}{path}", timeout=probe.get("timeoutSeconds", 1)) as resp:
            assert resp.status == 200, f"{kind} {path}"
    # The start-up budget must cover a load at least as slow as this machine's.
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert vllm_server.startup_seconds is not None and vllm_server.startup_seconds < budget, (
        f"vLLM took {vllm_server.startup_seconds:.0f}s to answer /health; the startupProbe allows {budget}s"
    )
