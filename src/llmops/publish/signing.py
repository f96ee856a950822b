"""Helm provenance signing keys: from the environment for real releases, generated for tests.

Helm signs with an OpenPGP key from a keyring *file* in the classic format
(``gpg --export-secret-keys``), and verifies against a public keyring file.
Keys never live in the repository:

- ``LLMOPS_SIGNING_KEY``: the key's user id or email (Helm's ``--key``);
- ``LLMOPS_SIGNING_KEYRING``: the secret keyring file;
- ``LLMOPS_SIGNING_PASSPHRASE_FILE``: optional, for an encrypted key;
- ``LLMOPS_VERIFY_KEYRING``: the public keyring users verify with.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmops import tools
from llmops.errors import LlmopsError

ENV_KEY = "LLMOPS_SIGNING_KEY"
ENV_KEYRING = "LLMOPS_SIGNING_KEYRING"
ENV_PASSPHRASE_FILE = "LLMOPS_SIGNING_PASSPHRASE_FILE"
ENV_VERIFY_KEYRING = "LLMOPS_VERIFY_KEYRING"


class SigningError(LlmopsError):
    exit_code = 2


@dataclass(frozen=True)
class SigningKey:
    name: str
    keyring: Path
    public_keyring: Path
    passphrase_file: Path | None = None
    fingerprint: str = ""

    def helm_args(self) -> list[str]:
        args = ["--sign", "--key", self.name, "--keyring", str(self.keyring)]
        return args + (["--passphrase-file", str(self.passphrase_file)] if self.passphrase_file else [])

    def env(self) -> dict[str, str]:
        out = {ENV_KEY: self.name, ENV_KEYRING: str(self.keyring), ENV_VERIFY_KEYRING: str(self.public_keyring)}
        if self.passphrase_file:
            out[ENV_PASSPHRASE_FILE] = str(self.passphrase_file)
        return out


def from_env(env: dict[str, str] | None = None) -> SigningKey:
    env = dict(os.environ) if env is None else env
    missing = [k for k in (ENV_KEY, ENV_KEYRING, ENV_VERIFY_KEYRING) if not env.get(k)]
    if missing:
        raise SigningError(f"signing needs {', '.join(missing)} in the environment (see docs/releasing.md); "
                           "keys never come from the repository")
    keyring = Path(env[ENV_KEYRING])
    for path in (keyring, Path(env[ENV_VERIFY_KEYRING])):
        if not path.is_file():
            raise SigningError(f"keyring {path} does not exist")
    pp = env.get(ENV_PASSPHRASE_FILE)
    return SigningKey(env[ENV_KEY], keyring, Path(env[ENV_VERIFY_KEYRING]), Path(pp) if pp else None)


def verify_keyring_from_env(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if not env.get(ENV_VERIFY_KEYRING):
        raise SigningError(f"verification needs {ENV_VERIFY_KEYRING} (the public keyring) in the environment")
    return Path(env[ENV_VERIFY_KEYRING])


def _gpg(home: Path, *args: str, stdout: Path | None = None) -> str:
    env = {**os.environ, "GNUPGHOME": str(home)}
    with (stdout.open("wb") if stdout else open(os.devnull, "wb")) as out:
        proc = subprocess.run([str(tools.require("gpg")), "--batch", "--yes", *args], env=env, stdout=out if stdout else subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SigningError(f"gpg {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode() if proc.stdout else ""


def generate(home: Path, name: str = "llmops release test", email: str = "release-test@llmops.invalid") -> SigningKey:
    """A fresh RSA signing key (no passphrase) in GNUPGHOME=HOME, exported to keyring files Helm reads."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    uid = f"{name} <{email}>"
    _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "rsa3072", "sign", "never")
    secret, public = home / "secring.gpg", home / "pubring-export.gpg"
    _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", email, stdout=secret)
    _gpg(home, "--export", email, stdout=public)
    fpr = next(line.split(":")[9] for line in _gpg(home, "--with-colons", "--fingerprint", email).splitlines()
               if line.startswith("fpr:"))
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                   capture_output=True, check=False)
    return SigningKey(email, secret, public, None, fpr)
