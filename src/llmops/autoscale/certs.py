"""A throwaway CA and one serving certificate for the host-run KEDA processes.

The KEDA operator serves its gRPC metrics service with ``tls.crt``/``tls.key``
from ``--cert-dir`` and the metrics adapter dials it trusting ``ca.crt`` from
the same folder; the API server's aggregator dials the adapter and checks its
certificate against the APIService ``caBundle`` with server name
``<service>.<namespace>.svc``. One leaf whose SANs cover all of those names
(plus localhost/127.0.0.1, where everything really listens) serves both.

Generated with the system ``openssl`` (Debian base) so no crypto library has
to join the pinned Python dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import ToolError

VALID_DAYS = 2


@dataclass(frozen=True)
class CertDir:
    """``ca.crt``, ``tls.crt``, ``tls.key`` in one folder (the layout KEDA's ``--cert-dir`` expects)."""

    path: Path

    @property
    def ca(self) -> Path:
        return self.path / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.path / "tls.crt"

    @property
    def key(self) -> Path:
        return self.path / "tls.key"


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise ToolError("openssl is not on PATH; install Debian package `openssl` (needed for the KEDA certificates)")
    proc = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"`openssl {' '.join(args[:2])} ...` failed: {proc.stderr.strip()[-400:]}")


def generate(folder: Path, dns_names: Sequence[str], ips: Sequence[str] = ("127.0.0.1",)) -> CertDir:
    """Write a fresh CA and a leaf for DNS_NAMES + IPS into FOLDER (idempotent only in the sense of overwrite)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = CertDir(folder)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", str(VALID_DAYS), "-subj", "/CN=llmops-autoscale-e2e-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)  # fmt: skip
    sans = ",".join([*(f"DNS:{n}" for n in dns_names), *(f"IP:{i}" for i in ips)])
    ext = folder / "leaf.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        f"subjectAltName={sans}\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "leaf.csr",
             "-subj", f"/CN={dns_names[0]}", cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tls.crt", "-days", str(VALID_DAYS), "-extfile", "leaf.ext", cwd=folder)  # fmt: skip
    for f in (folder / "ca.key", folder / "leaf.csr"):
        f.chmod(0o600)
    out.key.chmod(0o600)
    return out
