from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, pod_spec

SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.I)
SECRET_FLAG = re.compile(r"^--?(api-key|hf-token|token|password|secret)(=(.*))?$", re.I)
# Names that point at a credential (a mounted file, a Secret's name) rather than hold one.
REFERENCE_NAME = re.compile(r"_(PATH|FILE|DIR|NAME)$", re.I)
# $(VAR) is Kubernetes' expansion of another env var (itself from a Secret), not a literal.
EXPANSION = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*\)$")


class NoLiteralCredentials(LlmopsK8Check):
    """Credentials come from Secrets (valueFrom), never as literal env values or flags in the manifest."""

    def __init__(self) -> None:
        super().__init__(
            name="No credential appears as a literal env value or command-line flag",
            id="CKV_LLMOPS_7",
            categories=(CheckCategories.SECRETS,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        for c in all_containers(pod_spec(conf)):
            for env in c.get("env") or []:
                value = env.get("value")
                name = str(env.get("name", ""))
                if SECRET_NAME.search(name) and not REFERENCE_NAME.search(name) and value not in (None, ""):
                    if not EXPANSION.match(str(value)):
                        self.details.append(f"container {c.get('name')}: env {env.get('name')} has a literal value")
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            for i, arg in enumerate(argv):
                m = SECRET_FLAG.match(arg)
                if not m:
                    continue
                value = m.group(3) if m.group(2) else (argv[i + 1] if i + 1 < len(argv) else "")
                if value and not EXPANSION.match(value):
                    self.details.append(f"container {c.get('name')}: {m.group(1)} passed as a literal argument")
        return CheckResult.FAILED if self.details else CheckResult.PASSED


check = NoLiteralCredentials()
