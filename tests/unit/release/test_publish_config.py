"""Signing keys and registry credentials come from the environment only; loopback registries speak HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.publish import oci, signing


def test_signing_without_the_key_environment_names_every_missing_variable() -> None:
    with pytest.raises(signing.SigningError) as err:
        signing.from_env({})
    for var in (signing.ENV_KEY, signing.ENV_KEYRING, signing.ENV_VERIFY_KEYRING):
        assert var in str(err.value)
    assert "never come from the repository" in str(err.value)


def test_a_keyring_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    env = {signing.ENV_KEY: "k", signing.ENV_KEYRING: str(tmp_path / "nope.gpg"),
           signing.ENV_VERIFY_KEYRING: str(tmp_path / "pub.gpg")}
    with pytest.raises(signing.SigningError, match="nope.gpg does not exist"):
        signing.from_env(env)


def test_a_key_from_the_environment_signs_with_helm_flags(tmp_path: Path) -> None:
    for name in ("sec.gpg", "pub.gpg", "pass"):
        (tmp_path / name).write_text("x")
    key = signing.from_env({signing.ENV_KEY: "rel@example.invalid", signing.ENV_KEYRING: str(tmp_path / "sec.gpg"),
                            signing.ENV_VERIFY_KEYRING: str(tmp_path / "pub.gpg"),
                            signing.ENV_PASSPHRASE_FILE: str(tmp_path / "pass")})
    assert key.helm_args() == ["--sign", "--key", "rel@example.invalid", "--keyring", str(tmp_path / "sec.gpg"),
                               "--passphrase-file", str(tmp_path / "pass")]


@pytest.mark.parametrize(("url", "flags"), [("oci://127.0.0.1:16100/charts", ["--plain-http"]),
                                            ("oci://localhost:5000/x", ["--plain-http"]),
                                            ("oci://ghcr.io/llmops-stack/charts", [])])
def test_only_loopback_registries_are_spoken_to_over_plain_http(url: str, flags: list[str]) -> None:
    assert oci.plain_http(url) == flags


def test_no_key_material_is_committed() -> None:
    from llmops import paths

    tracked = __import__("subprocess").run(["git", "-C", str(paths.REPO_ROOT), "ls-files"], capture_output=True,
                                           text=True, check=True).stdout.split()
    assert not [f for f in tracked if f.endswith((".gpg", ".asc", ".key", ".pem", ".prov"))]
