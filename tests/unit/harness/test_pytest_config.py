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


def test_dist_loadgroup_keeps_an_xdist_group_on_one_worker_with_its_module_fixtures_set_up_once(tmp_path: Path) -> None:
    """`make test` runs `-n 2 --dist loadgroup`: tests that share a cluster, fixed ports or an expensive
    module fixture (the engine pod) carry one ``xdist_group`` and must run on one worker, in order.
    pytest 9.2.0 with pytest-xdist 3.8.0 split such groups over both workers (the engine pod was
    built and started twice per run); this fails on that combination."""
    log = tmp_path / "setups.log"
    for name in ("a", "b", "c"):
        (tmp_path / f"test_{name}.py").write_text(
            "import os, time, pytest\n"
            "pytestmark = pytest.mark.xdist_group('shared')\n"
            "@pytest.fixture(scope='module')\n"
            "def expensive():\n"
            f"    with open({str(log)!r}, 'a') as fh:\n"
            f"        fh.write('{name} ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
            "    yield\n"
            "def test_1(expensive): time.sleep(0.05)\n"
            "def test_2(expensive): time.sleep(0.05)\n"
            "def test_3(expensive): time.sleep(0.05)\n"
        )
    (tmp_path / "test_free.py").write_text("".join(f"def test_{i}(): pass\n" for i in range(6)))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(paths.PYPROJECT), "--rootdir", str(tmp_path),
         "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-q", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    setups = log.read_text().split()
    modules, workers = setups[0::2], setups[1::2]
    assert sorted(modules) == ["a", "b", "c"], f"a module fixture was set up more than once: {setups}"
    assert len(set(workers)) == 1, f"the group ran on several workers: {setups}"
