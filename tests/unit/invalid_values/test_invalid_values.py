"""The bad-values corpus: every case is rejected by `helm template` (Helm 3 and 4) and by `llmops validate`.

Each file in tests/fixtures/invalid-values/ is a values file layered on the
umbrella chart's defaults, with a header naming the values path the rejection
must mention (`# expect: <path>`) and optionally text the message must
contain (`# expect-message: ...`). A case passes only if:

- both Helm majors fail to render it (schema or validateValues), and their
  error names the path (as Helm's JSON-pointer schema paths or as text);
- `llmops validate` reports it as invalid, with a problem naming the path;
- nothing is rendered (no manifests come back from either Helm).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmops import paths, validate
from llmops.validate import render

CORPUS = paths.REPO_ROOT / "tests" / "fixtures" / "invalid-values"
CASES = sorted(CORPUS.glob("*.yaml"))


def header(case: Path, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^# {key}:\s*(.+)$", case.read_text(), re.M)]


def _pointer_to_path(prefix: str, pointer: str) -> str:
    out = prefix
    for part in [p for p in pointer.split("/") if p]:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def helm_error_paths(stderr: str, umbrella: str = "llmops-stack") -> set[str]:
    """Values paths named by Helm's schema error report ('<chart>:' headers, then "- at '/a/0/b': ...")."""
    found: set[str] = set()
    prefix = ""
    for line in stderr.splitlines():
        header_match = re.match(r"^([A-Za-z0-9_.-]+):\s*$", line)
        if header_match:
            prefix = "" if header_match.group(1) == umbrella else header_match.group(1)
            continue
        at = re.search(r"at '(/?[^']*)'", line)
        if not at:
            continue
        base = _pointer_to_path(prefix, at.group(1))
        found.add(base)
        for group in re.findall(r"(?:additional properties|missing propert(?:y|ies)) ((?:'[^']+'(?:, )?)+)", line):
            for key in re.findall(r"'([^']+)'", group):
                found.add(f"{base}.{key}" if base else key)
    return found


def names_values_path(reported: str, expected: str) -> bool:
    """REPORTED is EXPECTED or a path inside it (vllm.models[1].name names vllm.models)."""
    return reported == expected or reported.startswith((expected + ".", expected + "["))


def names_path(message: str, path: str) -> bool:
    return path in helm_error_paths(message) or path in message


def test_corpus_has_at_least_40_cases_with_an_expected_path() -> None:
    assert len(CASES) >= 40
    missing = [c.name for c in CASES if not header(c, "expect")]
    assert missing == []


def test_helm_error_paths_reads_nested_schema_reports() -> None:
    stderr = (
        "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
        "llmops-stack:\n- at '/global/environment': value must be one of 'local'\n"
        "vllm:\n- at '/models': validation failed\n"
        "  - at '/models/0': additional properties 'maxModelLenn' not allowed\n"
        "  - at '/models/1': missing property 'name'\n"
        "- at '': additional properties 'replcas' not allowed\n"
    )
    assert helm_error_paths(stderr) == {
        "global.environment", "vllm.models", "vllm.models[0]", "vllm.models[0].maxModelLenn",
        "vllm.models[1]", "vllm.models[1].name", "vllm", "vllm.replcas",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_values_are_rejected_by_helm_and_llmops_validate_naming_the_path(case: Path) -> None:
    expected_paths = header(case, "expect")
    assert expected_paths, f"{case.name} has no '# expect: <values path>' header: the path check would pass vacuously"
    expected_messages = header(case, "expect-message")
    [result] = validate.validate(
        [validate.Target(case.stem, (case,))], render_invalid=True, kube_versions=()
    )
    # Helm 3 and Helm 4 both refuse to render it, and say where.
    assert set(result.render_errors) == set(render.HELM_VERSIONS), f"rendered by {set(result.manifests)}"
    assert result.manifests == {}
    for helm, message in result.render_errors.items():
        for path in expected_paths:
            assert names_path(message, path), f"{helm} error does not name {path}:\n{message}"
    # llmops validate rejects it too, naming the path in its own report.
    assert not result.ok
    text = validate.format_text([result])
    for path in expected_paths:
        assert any(names_values_path(p.path, path) or path in p.message for p in result.problems), (
            f"llmops does not name {path}:\n{text}"
        )
    for needle in expected_messages:
        assert needle in text
