"""Findings and the report that collects them.

A finding is one problem: ``FILE: rule-id: severity: what is wrong (expected …, found …)``.
Every (file, rule) pair a rule looked at is recorded, so the summary can say how many checks
passed; a pair with only not-applicable findings is counted as not applicable, never as passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

RULES = (
    "schema", "errors", "memory", "arithmetic", "definitions", "lossless", "comparability",
    "baseline-stability", "dataset-provenance", "provenance", "staleness", "artifacts", "manuscript",
)
ERROR, WARNING, NOT_APPLICABLE = "error", "warning", "not-applicable"
_RANK = {ERROR: 3, WARNING: 2, NOT_APPLICABLE: 1}


@dataclass(frozen=True)
class Finding:
    file: str  # path as given (text files: "path:line")
    rule: str
    severity: str  # error | warning | not-applicable
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.rule}: {self.severity}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, rule) -> status
    files: set[str] = field(default_factory=set)

    def ran(self, file: str, rule: str) -> None:
        """Record that `rule` looked at `file` (status: passed unless a finding says otherwise)."""
        self.checked.setdefault((file, rule), "passed")
        self.files.add(file)

    def add(self, file: str, rule: str, severity: str, message: str, line: int | None = None) -> None:
        assert rule in RULES and severity in _RANK, (rule, severity)
        self.findings.append(Finding(f"{file}:{line}" if line else file, rule, severity, message))
        key = (file, rule)
        if _RANK[severity] > _RANK.get(self.checked.get(key), 0):
            self.checked[key] = severity
        self.files.add(file)

    def error(self, file: str, rule: str, message: str, line: int | None = None) -> None:
        self.add(file, rule, ERROR, message, line)

    def warning(self, file: str, rule: str, message: str, line: int | None = None) -> None:
        self.add(file, rule, WARNING, message, line)

    def not_applicable(self, file: str, rule: str, message: str) -> None:
        self.add(file, rule, NOT_APPLICABLE, message)

    def count(self, severity: str, strict: bool = False) -> int:
        if strict and severity == ERROR:
            return sum(f.severity in (ERROR, WARNING) for f in self.findings)
        if strict and severity == WARNING:
            return 0
        return sum(f.severity == severity for f in self.findings)

    def status_counts(self) -> dict[str, int]:
        out = {"passed": 0, ERROR: 0, WARNING: 0, NOT_APPLICABLE: 0}
        for status in self.checked.values():
            out[status] += 1
        return out

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.count(ERROR, strict) else 0

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (-_RANK[f.severity], f.file, RULES.index(f.rule)))

    def text(self, strict: bool = False) -> str:
        lines = [f.line() for f in self.sorted_findings()]
        s = self.status_counts()
        lines.append(
            f"decodebench check: {len(self.files)} files, {len(self.checked)} rule checks: "
            f"{s['passed']} passed, {s[ERROR]} with errors, {s[WARNING]} with warnings, "
            f"{s[NOT_APPLICABLE]} not applicable; {self.count(ERROR)} errors, {self.count(WARNING)} "
            f"warnings, {self.count(NOT_APPLICABLE)} not applicable"
            + (" (--strict: warnings count as errors)" if strict else ""))
        return "\n".join(lines)

    def json(self, strict: bool = False) -> str:
        return json.dumps({
            "findings": [asdict(f) for f in self.sorted_findings()],
            "checks": self.status_counts(),
            "counts": {sev: self.count(sev) for sev in (ERROR, WARNING, NOT_APPLICABLE)},
            "strict": strict,
            "exit_code": self.exit_code(strict),
        }, indent=1)
