"""Rules on what is made from the results: artifacts (paper/generated/ and results/MANIFEST.json);
the manuscript rule (numbers typed into paper/*.tex by hand) is in manuscript.py.

The manifest, written by the render stage:

    {"schema_version": "1.0",
     "artifacts": {"<path relative to the repo root>": {"sha256": "<hex>",
                                                        "inputs": {"<result path>": "<sha256>"}}}}

`check` compares, it does not re-derive: the aggregated CSVs against a fresh aggregation of the
result files (``rule_tables``), the generated files against the manifest's hashes, and the
generated files against a rendering into a temporary directory by
``decodebench.render.render_all(cfg, out_dir, root=root)``, the same function the pipeline's
render rule calls.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from ..results import file_sha256
from .report import Report

MANIFEST = Path("results/MANIFEST.json")
GENERATED = Path("paper/generated")

# Normalised away before comparing PDFs: timestamps and the file id change on every save.
_PDF_VOLATILE = re.compile(rb"/(CreationDate|ModDate) \(D:[^)]*\)|/ID \[<[0-9a-fA-F]*> ?<[0-9a-fA-F]*>\]")

def rule_dataset_names(root: Path, loaders: set[str], report: Report) -> None:
    """dataset-provenance on the generated text: a public dataset named in a table, figure
    source or numbers file must be the loader of some checked result ("WikiText" in a table
    whose results all came from the embedded Gutenberg loader is a mislabelled table)."""
    from .inputs import PUBLIC_DATASETS

    generated = root / GENERATED
    if not generated.is_dir() or not loaders:
        return
    patterns = {public: re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
                for public, words in PUBLIC_DATASETS.items() if public not in loaders}
    for path in sorted(p for p in generated.rglob("*") if p.is_file() and p.suffix in (".tex", ".csv", ".txt")):
        rel = str(path.relative_to(root))
        report.ran(rel, "dataset-provenance")
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for public, pattern in patterns.items():
                if m := pattern.search(line):
                    report.error(rel, "dataset-provenance", f"names {m.group(0)!r}, but no checked result comes "
                                                            f"from the {public} loader (expected one of the "
                                                            f"results' loaders: {', '.join(sorted(loaders))})",
                                 line=n)


def _is_text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_difference(expected: str, found: str) -> tuple[int, str, str]:
    a, b = expected.splitlines(), found.splitlines()
    for i in range(max(len(a), len(b))):
        x, y = (a[i] if i < len(a) else "<end of file>"), (b[i] if i < len(b) else "<end of file>")
        if x != y:
            return i + 1, x, y
    return max(len(a), len(b)), "<same lines; line endings differ>", ""


def _compare(fresh: Path, current: Path, rel: str, report: Report) -> None:
    new, old = fresh.read_bytes(), current.read_bytes()
    if new == old:
        return
    if _is_text(new) and _is_text(old):
        line, exp, found = _first_difference(new.decode(), old.decode())
        report.error(rel, "artifacts", f"differs from a fresh rendering of the current results (hand-edited, or "
                                       f"made with other settings; expected {exp.strip()!r}, found {found.strip()!r})",
                     line=line)
    elif current.suffix == ".pdf" and _PDF_VOLATILE.sub(b"", new) == _PDF_VOLATILE.sub(b"", old):
        return
    else:
        report.error(rel, "artifacts", f"differs from a fresh rendering of the current results (binary; expected "
                                       f"sha256 {file_sha256(fresh)[:16]}…, found {file_sha256(current)[:16]}…)")


def rule_artifacts(root: Path, cfg: dict | None, report: Report, rerender: bool = True) -> None:
    generated = root / GENERATED
    files = {str(p.relative_to(root)) for p in generated.rglob("*") if p.is_file()} if generated.is_dir() else set()
    mpath, mrel = root / MANIFEST, str(MANIFEST)
    artifacts = _check_manifest(root, mpath, mrel, files, report)
    if not rerender:
        return
    if not files and artifacts is None:
        return
    report.ran(mrel, "artifacts")
    if cfg is None:
        report.warning(mrel, "artifacts", "not re-rendered: no config given (expected --config to compare the "
                                          "generated files with a fresh rendering)")
        return
    from ..render import render_all  # the pipeline's own entry point (scripts/render.py calls it too)

    with tempfile.TemporaryDirectory(prefix="decodebench-check-") as tmp:
        out = Path(tmp)
        try:
            render_all(cfg, out, root=root)  # the results and templates under --root, not the cwd
        except Exception as exc:  # any failure of the renderer is the finding
            report.error(mrel, "artifacts", f"re-rendering failed: {type(exc).__name__}: {exc}")
            return
        fresh = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
        for rel in sorted(fresh):
            report.ran(rel, "artifacts")
            if rel not in files and not (root / rel).exists():
                report.error(rel, "artifacts", "a fresh rendering makes this file, which is missing "
                                               "(expected the file, found none)")
            else:
                _compare(out / rel, root / rel, rel, report)
        for rel in sorted(files - fresh):
            report.error(rel, "artifacts", "not made by a fresh rendering (expected every file in "
                                           f"{GENERATED}/ to come from the render stage, found an extra file)")


def rule_tables(root: Path, cfg: dict | None, report: Report) -> None:
    """Each experiment's aggregated CSV (``results/tables/<study>/<experiment>.csv``, what the
    render stage reads) against a fresh aggregation of the experiment's current result files:
    an edited CSV, or one left stale by a re-measured result or a changed label or baseline in
    the config, is an error at its first differing line (rule id artifacts)."""
    if cfg is None or "experiments" not in cfg:
        return
    from ..analysis import aggregate_files, table_text
    from ..layout import result_files, table_path

    for experiment in sorted(cfg["experiments"]):
        rel = table_path(cfg["study"], experiment)
        path = root / rel
        if not path.exists():
            continue
        report.ran(rel, "artifacts")
        sources = [root / f for f in result_files(cfg, experiment)]
        missing = [str(f.relative_to(root)) for f in sources if not f.exists()]
        if missing:
            report.error(rel, "artifacts", f"made from result files that no longer exist (expected "
                                           f"{missing[0]}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''})")
            continue
        _compare_with_fresh(root, rel, report, lambda e=experiment, s=sources: table_text(aggregate_files(cfg, e, s)),
                            failed="re-aggregating its results failed",
                            differs="differs from a fresh aggregation of the current results (edited, or stale: "
                                    "results or config changed since")


def rule_setup_table(root: Path, cfg: dict | None, report: Report) -> None:
    """The setup table (``results/tables/<study>/setup.csv``, the setup section's values)
    against a fresh aggregation of every result file's provenance (rule id artifacts)."""
    if cfg is None or "experiments" not in cfg:
        return
    from ..layout import setup_path, study_result_files
    from ..study_setup import setup_files
    from ..study_setup import table_text as setup_table_text

    rel = setup_path(cfg["study"])
    if not (root / rel).exists():
        return
    report.ran(rel, "artifacts")
    sources = [root / f for f in study_result_files(cfg)]
    _compare_with_fresh(root, rel, report, lambda: setup_table_text(setup_files(sources)),
                        failed="re-aggregating the results' provenance failed",
                        differs="differs from a fresh aggregation of the results' provenance (edited, or stale")


def _compare_with_fresh(root: Path, rel: str, report: Report, fresh_text, failed: str, differs: str) -> None:
    """The file `rel` against `fresh_text()` (its aggregation from the current results): an error
    when the aggregation fails (`failed`) or at the first line that differs (`differs`)."""
    try:
        fresh = fresh_text()
    except Exception as exc:  # the aggregation's failure is the finding
        report.error(rel, "artifacts", f"{failed}: {type(exc).__name__}: {exc}")
        return
    current = (root / rel).read_text()
    if fresh != current:
        line, exp, found = _first_difference(fresh, current)
        report.error(rel, "artifacts", f"{differs}; expected {exp.strip()[:120]!r}, found {found.strip()[:120]!r})",
                     line=line)


def _check_manifest(root: Path, mpath: Path, mrel: str, files: set[str], report: Report) -> dict | None:
    if not mpath.exists():
        if files:
            report.ran(mrel, "artifacts")
            report.error(mrel, "artifacts", f"missing: {len(files)} file(s) in {GENERATED}/ cannot be traced "
                                            f"to the results they came from")
        return None
    report.ran(mrel, "artifacts")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        artifacts = manifest["artifacts"]
        if manifest.get("schema_version") != "1.0" or not isinstance(artifacts, dict):
            raise ValueError(f"schema_version {manifest.get('schema_version')!r}")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        report.error(mrel, "artifacts", f"not a manifest (expected {{\"schema_version\": \"1.0\", \"artifacts\": "
                                        f"{{...}}}}, found {type(exc).__name__}: {exc})")
        return None
    current: dict[str, str | None] = {}

    def sha(rel: str) -> str | None:
        if rel not in current:
            p = root / rel
            current[rel] = file_sha256(p) if p.is_file() else None
        return current[rel]

    for rel, entry in sorted(artifacts.items()):
        report.ran(rel, "artifacts")
        now_sha = sha(rel)
        if now_sha is None:
            report.error(rel, "artifacts", f"listed in {mrel} but missing (expected the file, found none)")
        elif entry.get("sha256") != now_sha:
            report.error(rel, "artifacts", f"changed since it was rendered (expected sha256 "
                                           f"{str(entry.get('sha256'))[:16]}… from {mrel}, found {now_sha[:16]}…)")
        for inp, recorded in sorted((entry.get("inputs") or {}).items()):
            now = sha(inp)
            if now is None:
                report.error(rel, "artifacts", f"stale: its input {inp} no longer exists")
            elif now != recorded:
                report.error(rel, "artifacts", f"stale: its input {inp} changed since rendering (expected sha256 "
                                               f"{recorded[:16]}…, found {now[:16]}…)")
    for rel in sorted(files - set(artifacts)):
        report.ran(rel, "artifacts")
        report.error(rel, "artifacts", f"not listed in {mrel} (expected every generated file with the "
                                       f"results it came from)")
    return artifacts
