"""Findings and the report that collects them.

A finding is one problem: ``FILE: rule-id: severity: what is wrong (expected …, found …)``.
Every (file, rule) pair a rule looked at is recorded, so the summary can say how many checks
passed; a pair with only not-applicable findings is counted as not applicable, never as passed.

A study's config may acknowledge findings it cannot fix (``check: {acknowledge: [{rule, files,
reason}]}``, typically third-party data): matching errors and warnings are then reported as
``acknowledged`` with the reason, still listed and counted, but they do not fail the check
(``--strict`` still does).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace

RULES = (
    "schema", "errors", "memory", "memory-model", "arithmetic", "definitions", "relations", "values", "lossless",
    "comparability", "baseline-stability", "no-baseline", "run-agreement", "contention", "dataset-provenance",
    "identity", "tuning", "provenance", "staleness", "artifacts", "manuscript", "gate",
)
ERROR, WARNING, NOT_APPLICABLE = "error", "warning", "not-applicable"
ACKNOWLEDGED = "acknowledged"
_RANK = {ERROR: 4, ACKNOWLEDGED: 3, WARNING: 2, NOT_APPLICABLE: 1}


def _matches(path: str, pattern: str) -> bool:
    """Glob match on the path as reported, or on its tail (results checked from another root)."""
    return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern)


@dataclass(frozen=True)
class Finding:
    file: str  # path as given (text files: "path:line")
    rule: str
    severity: str  # error | acknowledged | warning | not-applicable
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.rule}: {self.severity}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, rule) -> status
    files: set[str] = field(default_factory=set)
    _keys: list[tuple[str, str]] = field(default_factory=list)  # (file, rule) of each finding
    remeasure: set[tuple[str, str]] = field(default_factory=set)  # (result file, rule) a re-measurement can fix
    configfile: str | None = None  # for the re-measure command
    inputs: dict[str, str] | None = None  # what was checked: path -> sha256 (gate.checked_inputs)
    config_sha256: str | None = None  # the config's canonical hash (load_config's _sha256)

    def fixable(self, file: str, rule: str) -> None:
        """Mark the findings of `rule` on `file` as fixable by measuring the file's job again."""
        self.remeasure.add((file, rule))

    def remeasure_files(self) -> list[str]:
        """Result files with an unacknowledged error or warning that a re-measurement can fix."""
        return sorted({f.file for f in self.findings
                       if (f.file, f.rule) in self.remeasure and f.severity in (ERROR, WARNING)})

    def remeasure_command(self) -> str | None:
        """The command that re-measures only the flagged results' benchmark jobs (a paired
        group re-runs as a whole: Snakemake forces the job that writes each file)."""
        files = self.remeasure_files()
        if not files:
            return None
        config = f" --configfile {self.configfile}" if self.configfile else ""
        return f"snakemake --cores all{config} --forcerun " + " ".join(files)

    def ran(self, file: str, rule: str) -> None:
        """Record that `rule` looked at `file` (status: passed unless a finding says otherwise)."""
        self.checked.setdefault((file, rule), "passed")
        self.files.add(file)

    def add(self, file: str, rule: str, severity: str, message: str, line: int | None = None) -> None:
        assert rule in RULES and severity in _RANK, (rule, severity)
        self.findings.append(Finding(f"{file}:{line}" if line else file, rule, severity, message))
        key = (file, rule)
        self._keys.append(key)
        if _RANK[severity] > _RANK.get(self.checked.get(key, ""), 0):
            self.checked[key] = severity
        self.files.add(file)

    def error(self, file: str, rule: str, message: str, line: int | None = None) -> None:
        self.add(file, rule, ERROR, message, line)

    def warning(self, file: str, rule: str, message: str, line: int | None = None) -> None:
        self.add(file, rule, WARNING, message, line)

    def not_applicable(self, file: str, rule: str, message: str) -> None:
        self.add(file, rule, NOT_APPLICABLE, message)

    def acknowledge(self, entries: list[dict]) -> None:
        """Turn the errors and warnings that match a config entry (``rule``, optional ``files``
        glob on the file's path) into acknowledged findings that carry the entry's reason."""
        for i, (f, (file, _)) in enumerate(zip(self.findings, self._keys)):
            entry = next((e for e in entries if e["rule"] == f.rule and f.severity in (ERROR, WARNING)
                          and _matches(file, e.get("files", "*"))), None)
            if entry is not None:
                self.findings[i] = replace(f, severity=ACKNOWLEDGED,
                                           message=f"{f.message} [acknowledged: {entry['reason']}]")
        worst: dict[tuple[str, str], str] = {}
        for f, key in zip(self.findings, self._keys):
            if _RANK[f.severity] > _RANK.get(worst.get(key, ""), 0):
                worst[key] = f.severity
        self.checked = {key: worst.get(key, "passed") for key in self.checked}

    def count(self, severity: str, strict: bool = False) -> int:
        if strict and severity == ERROR:
            return sum(f.severity in (ERROR, ACKNOWLEDGED, WARNING) for f in self.findings)
        if strict and severity in (WARNING, ACKNOWLEDGED):
            return 0
        return sum(f.severity == severity for f in self.findings)

    def status_counts(self) -> dict[str, int]:
        out = {"passed": 0, ERROR: 0, ACKNOWLEDGED: 0, WARNING: 0, NOT_APPLICABLE: 0}
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
            f"{s['passed']} passed, {s[ERROR]} with errors, {s[ACKNOWLEDGED]} acknowledged, "
            f"{s[WARNING]} with warnings, {s[NOT_APPLICABLE]} not applicable; {self.count(ERROR)} errors, "
            f"{self.count(ACKNOWLEDGED)} acknowledged, {self.count(WARNING)} warnings, "
            f"{self.count(NOT_APPLICABLE)} not applicable"
            + (" (--strict: warnings count as errors)" if strict else ""))
        if (command := self.remeasure_command()) is not None:
            lines.append(f"re-measure the flagged jobs (only those): {command}")
        body = "\n".join(lines)
        if self.inputs is None:
            return body
        return body + "\n" + signature_line(body, self.config_sha256, self.inputs)

    def json(self, strict: bool = False) -> str:
        return json.dumps({
            "findings": [asdict(f) for f in self.sorted_findings()],
            "checks": self.status_counts(),
            "counts": {sev: self.count(sev) for sev in (ERROR, ACKNOWLEDGED, WARNING, NOT_APPLICABLE)},
            "strict": strict,
            "exit_code": self.exit_code(strict),
            "remeasure_command": self.remeasure_command(),
        }, indent=1)


# The last line of a report signs its text with the config and the inputs it checked (rule gate,
# decodebench.check.gate, verifies it).
SIGNATURE = re.compile(r"^decodebench check signature: (?P<sig>[0-9a-f]{64}) \(config (?P<config>\S+), "
                       r"(?P<n>\d+) inputs\)$")


def signature(body: str, config_sha256: str | None, inputs: dict[str, str]) -> str:
    payload = {"report": body, "config": config_sha256, "inputs": sorted(inputs.items())}
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def signature_line(body: str, config_sha256: str | None, inputs: dict[str, str]) -> str:
    return (f"decodebench check signature: {signature(body, config_sha256, inputs)} "
            f"(config {(config_sha256 or 'none')[:16]}, {len(inputs)} inputs)")
