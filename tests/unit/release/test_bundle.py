"""The air-gap bundle of values/air-gapped.yaml: written, verified offline, and refused when tampered with."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from llmops import paths
from llmops.publish import bundle, signing

AIR_GAPPED = paths.VALUES_DIR / "air-gapped.yaml"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningKey:
    return signing.generate(tmp_path_factory.mktemp("gnupg"))


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Well-formed digests for the environment's placeholders (this machine reaches no image registry)."""
    path = tmp_path_factory.mktemp("overlay") / "digests.yaml"
    path.write_text(yaml.safe_dump({"vllm": {"image": {"digest": _digest("vllm-openai:v0.32.0")},
                                             "tests": {"image": {"digest": _digest("python:3.13-slim")}}},
                                    "router": {"image": {"digest": _digest("vllm-router:v0.1.17")}}}))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, key: signing.SigningKey, overlay: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("bundle") / "air-gapped.tar.gz"
    meta = bundle.create(out, [AIR_GAPPED, overlay], key=key, progress=lambda _m: None)
    return out, meta


def test_the_bundle_lists_charts_signatures_pinned_images_and_models_to_prestage(written: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, meta = written
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    for chart in meta["charts"]:
        assert f"llmops-bundle/{chart['file']}" in names and f"llmops-bundle/{chart['provenance']}" in names
    assert {c["name"] for c in meta["charts"]} >= {"llmops-stack", "vllm", "common"}
    images = {i["image"] for i in meta["images"]}
    assert any(i.startswith("registry.airgap.internal:5000/vllm/vllm-openai") for i in images), images
    assert all(i["digest"] and i["image"].endswith(i["digest"]) for i in meta["images"])
    assert any("Pod/" in u for i in meta["images"] for u in i["usedBy"]), "the helm test image is part of the list"
    (model,) = meta["models"]
    assert model["source"] == "pvc://llm-models/meta-llama/Llama-3.1-8B-Instruct"
    assert "PersistentVolumeClaim llm-models at /meta-llama/Llama-3.1-8B-Instruct" in model["stage"]


def test_the_bundle_verifies_offline_with_the_public_keyring(written: tuple[Path, dict], key: signing.SigningKey) -> None:  # type: ignore[type-arg]
    assert bundle.verify(written[0], key.public_keyring) == []


def test_verification_with_another_key_or_no_key_fails(written: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    other = signing.generate(tmp_path / "other")
    problems = bundle.verify(written[0], other.public_keyring)
    assert problems and all("provenance does not verify" in p for p in problems)
    assert any("no public keyring" in p for p in bundle.verify(written[0], None))


def _rewrite(src: Path, dst: Path, edit: object) -> Path:
    root = dst / "x"
    with tarfile.open(src) as tar:
        tar.extractall(root, filter="data")
    edit(root / "llmops-bundle")  # type: ignore[operator]
    out = dst / "bundle.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root / "llmops-bundle", arcname="llmops-bundle")
    return out


def test_a_changed_values_file_fails_its_checksum(written: tuple[Path, dict], key: signing.SigningKey,  # type: ignore[type-arg]
                                                 tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        v = next((root / "values").iterdir())
        v.write_text(v.read_text() + "\n# edited\n")

    problems = bundle.verify(_rewrite(written[0], tmp_path, edit), key.public_keyring)
    assert any(p.endswith(": checksum mismatch") and p.startswith("values/") for p in problems)


def test_a_swapped_chart_with_recomputed_checksums_still_fails_its_provenance(
    written: tuple[Path, dict], key: signing.SigningKey, tmp_path: Path  # type: ignore[type-arg]
) -> None:
    def edit(root: Path) -> None:
        meta = json.loads((root / "bundle.json").read_text())
        vllm = root / next(c["file"] for c in meta["charts"] if c["name"] == "vllm")
        vllm.write_bytes(vllm.read_bytes() + b"\0")
        lines = [f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}"
                 for n in (ln.split("  ", 1)[1] for ln in (root / "SHA256SUMS").read_text().splitlines())]
        (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")

    problems = bundle.verify(_rewrite(written[0], tmp_path, edit), key.public_keyring)
    assert any("vllm" in p and "provenance does not verify" in p for p in problems), problems


def test_placeholder_digests_are_refused_naming_the_image(key: signing.SigningKey, tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match=r"(?s)placeholder digests name no image.*registry.airgap.internal:5000/vllm/vllm-openai:v0.32.0"):
        bundle.create(tmp_path / "b.tar.gz", [AIR_GAPPED], key=key, progress=lambda _m: None)
