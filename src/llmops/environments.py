"""The shipped environment files (values/) and the test-only digest overlay.

The production and air-gapped files carry placeholder image digests (64
times the same hex digit): they say where a digest goes, but name no image,
so the chart refuses to render them as they are. Tests, benchmarks and the
cluster tier layer ``TEST_IMAGE_DIGESTS`` on top of exactly those files; a
real install layers the reviewed digests instead (``llmops validate --all
--overlay my-digests.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from llmops import paths

# sha256 sums of "llmops-test-only-not-an-image:<name>": they name no image.
TEST_IMAGE_DIGESTS = paths.REPO_ROOT / "tests" / "fixtures" / "overlays" / "test-image-digests.yaml"

_PLACEHOLDER = re.compile(r"sha256:([0-9a-f])\1{63}\b")


def placeholder_digests(path: str | Path) -> list[str]:
    """Every placeholder digest written in the values file PATH."""
    return [m.group(0) for m in _PLACEHOLDER.finditer(Path(path).read_text())]


def test_layers(files: Iterable[str | Path]) -> list[Path]:
    """FILES, plus the test-only digest overlay when any of them carries placeholder digests."""
    out = [Path(f) for f in files]
    if any(placeholder_digests(f) for f in out):
        out.append(TEST_IMAGE_DIGESTS)
    return out
