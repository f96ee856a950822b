"""The migration table applied to a values tree: renamed keys move, removed keys go, nothing else changes."""

from __future__ import annotations

from llmops.publish import migrate

ENTRIES = [
    {"old": "ingress.servicePort", "new": "ingress.backend.port", "version": "0.2.0"},
    {"old": "ingress.routes", "new": "", "version": "0.2.0"},
]


def test_a_renamed_key_moves_its_value_and_a_removed_key_is_dropped() -> None:
    values = {"ingress": {"servicePort": 8080, "routes": [{"path": "/"}], "hosts": ["a"]}, "vllm": {"x": 1}}
    out, done = migrate.apply(values, ENTRIES)
    assert out == {"ingress": {"backend": {"port": 8080}, "hosts": ["a"]}, "vllm": {"x": 1}}
    assert [(d.old, d.new, d.version) for d in done] == [("ingress.servicePort", "ingress.backend.port", "0.2.0"),
                                                        ("ingress.routes", "", "0.2.0")]
    assert values["ingress"]["servicePort"] == 8080, "the input is not modified"


def test_values_without_old_keys_come_back_unchanged() -> None:
    values = {"ingress": {"backend": {"port": 8000}}}
    assert migrate.apply(values, ENTRIES) == (values, [])


def test_the_shipped_table_carries_a_0_1_0_ingress_block() -> None:
    out, done = migrate.apply({"ingress": {"enabled": True, "routes": [{"path": "/llama", "model": "llama"}]}})
    assert "routes" not in out["ingress"] and [d.old for d in done] == ["ingress.routes"]
