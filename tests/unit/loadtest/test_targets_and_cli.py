"""Target resolution without a network, and the CLI's contract (exit codes, flags)."""

from __future__ import annotations

import pytest

from llmops import cli
from llmops.errors import LlmopsError
from llmops.loadtest import harness, targets


def test_url_target_strips_a_trailing_v1_and_uses_the_given_models() -> None:
    assert targets.from_url("https://gw.example:8443/v1/", ["a", "b"]) == {
        "a": ["https://gw.example:8443"],
        "b": ["https://gw.example:8443"],
    }


def test_unreachable_url_without_models_says_how_to_fix() -> None:
    with pytest.raises(LlmopsError, match=r"cannot list models at http://127.0.0.1:9/v1/models .* or pass --model"):
        targets.models_at("http://127.0.0.1:9", timeout=2)


def test_slo_breach_is_a_finding_exit_code_1_and_usage_errors_are_2() -> None:
    assert harness.SloBreach("x").exit_code == 1
    assert LlmopsError("x").exit_code == 2


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(LlmopsError, match=r"neither a file nor one of loadtests/profiles/ \(.*default.*spike"):
        harness.resolve_profile("no-such-profile")


def test_loadtest_cli_needs_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as err:
        parser.parse_args(["loadtest", "--url", "http://x", "--release", "r"])
    assert err.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    args = parser.parse_args(["loadtest", "--release", "r", "--shape", "poisson", "--rate", "5", "--duration", "1m"])
    assert (args.release, args.namespace, args.shape, args.rate, args.slo, args.profile) == ("r", "llmops", "poisson", 5.0, "default", "default")


def test_a_service_cluster_ip_that_answers_is_the_target_and_one_that_does_not_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def models_at(url: str, api_key: str = "", timeout: float = 10.0, *, insecure: bool = False) -> list[str]:
        if "10.113.0.20" in url:
            return ["tiny-llm"]
        raise LlmopsError("no route")

    monkeypatch.setattr(targets, "models_at", models_at)
    routed = {"name": "r-tiny", "model": "tiny", "port": 8000, "cluster_ip": "10.113.0.20"}
    assert targets._through_service(routed) == {"tiny-llm": "http://10.113.0.20:8000"}
    assert targets._through_service({**routed, "cluster_ip": "10.96.0.7"}) == {}
    assert targets._through_service({**routed, "cluster_ip": None}) == {}
