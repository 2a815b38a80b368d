"""Rule gate: a check report is tied to what it checked, and the stage behind it verifies it.

The report's last line signs its own text together with the config's canonical hash and the
SHA-256 of every input it checked (result files; with the artifacts also ``paper/generated/``,
``results/MANIFEST.json``, the study's aggregated CSVs and the manuscript's sources):

    decodebench check signature: <sha256> (config <sha256[:16]>, <n> inputs)

``decodebench check --verify-report REPORT --config C [PATHS]`` recomputes it from the inputs as
they are now (the same PATHS as the check) and refuses a report that is hand-written or
edited (no or a wrong signature), that was made for another config or other inputs, or that
reports errors. The paper rule runs it before latexmk, so only a passing check of exactly
these inputs opens the way to the PDF.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..results import file_sha256
from .report import SIGNATURE, Report, signature

_SUMMARY = re.compile(r"^decodebench check: .*; (?P<errors>\d+) errors, ")


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def checked_inputs(root: Path, results: list[Path], cfg: dict | None, artifacts: bool) -> dict[str, str]:
    """path (as reported) -> SHA-256 of every file the check read as input."""
    from .artifacts import GENERATED, MANIFEST
    from .manuscript import manuscript_files

    files = list(results)
    if artifacts:
        generated = root / GENERATED
        files += [p for p in generated.rglob("*") if p.is_file()] if generated.is_dir() else []
        files += [root / MANIFEST] if (root / MANIFEST).is_file() else []
        if cfg and "study" in cfg:
            files += sorted((root / "results" / "tables" / cfg["study"]).glob("*.csv"))
        files += [path for path, _ in manuscript_files(root)]
    return {_display(p, root): file_sha256(p) for p in files if Path(p).is_file()}


def verify_report(report_path: Path, text: str, config_sha256: str | None, inputs: dict[str, str],
                  report: Report) -> None:
    """Findings (rule gate, on the report file) when `text` is not a passing check of exactly
    this config and these inputs."""
    rel = str(report_path)
    report.ran(rel, "gate")
    lines = text.rstrip("\n").split("\n")
    m = SIGNATURE.match(lines[-1]) if lines else None
    if m is None:
        report.error(rel, "gate", "no signature: not written by decodebench check (expected a last line "
                                  "'decodebench check signature: <sha256> (config …, N inputs)'; a hand-written "
                                  "or truncated report opens no gate)")
        return
    body = "\n".join(lines[:-1])
    if (config_sha256 or "none")[:16] != m.group("config"):
        report.error(rel, "gate", f"made for another config (expected config {(config_sha256 or 'none')[:16]}, "
                                  f"found {m.group('config')}): the config changed since the check ran")
    elif int(m.group("n")) != len(inputs) or m.group("sig") != signature(body, config_sha256, inputs):
        report.error(rel, "gate", f"the signature does not match the report's text and the current inputs "
                                  f"(expected {len(inputs)} inputs as they are now, signed {m.group('n')}): an "
                                  f"input changed, appeared or disappeared since the check ran, or the report "
                                  f"was edited")
    summary = next((_SUMMARY.match(line) for line in lines if _SUMMARY.match(line)), None)
    if summary is None or int(summary.group("errors")):
        report.error(rel, "gate", f"the check did not pass (expected 0 errors, found "
                                  f"{summary.group('errors') if summary else 'no summary line'})")
