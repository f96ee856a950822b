"""The project's pytest configuration: an empty parameter set is an error, never a silent skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llmops import paths


def test_a_parametrize_over_an_empty_glob_fails_collection(tmp_path: Path) -> None:
    test = tmp_path / "test_empty.py"
    test.write_text(
        "import pathlib, pytest\n"
        "@pytest.mark.parametrize('f', sorted(pathlib.Path(__file__).parent.glob('*.nothing')))\n"
        "def test_each(f):\n"
        "    assert f\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(paths.PYPROJECT), "--rootdir", str(tmp_path),
         "-p", "no:cacheprovider", "-p", "no:xdist", "-q", str(test)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Empty parameter set" in out, out

