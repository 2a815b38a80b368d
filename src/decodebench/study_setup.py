"""The study's setup, aggregated from its result files' provenance: the values the paper's setup
section cites (``\\SetupTarget``, ``\\SetupDevice``, ...), one row per value, written to
``results/tables/<study>/setup.csv`` by the aggregate stage (rule ``aggregate_setup``) and only
formatted by ``render``. Where results disagree (two devices, two commits) the distinct values
are joined, so a mixed study shows it.

    table = setup_table([load_result(p) for p in all result files])   # columns name, value
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .results import atomic_write_text, load_result

COLUMNS = ("name", "value")


def _unique(values) -> str:
    """Distinct values, joined; numbers in numeric order."""
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)
    vals = sorted({str(v) for v in values if v not in (None, "")}, key=key)
    return ", ".join(vals) if vals else "not recorded"


def setup_values(results: list[dict]) -> dict[str, str]:
    """The setup section's values, from the result files' provenance (distinct values joined)."""
    env = [r["environment"] for r in results]
    models = [r["models"] for r in results]
    prov = [r["provenance"] for r in results]

    def model(role):
        ms = [m[role] for m in models if m.get(role)]
        return _unique(f"{m['name']} ({m['source']}"
                       + (f", {m['num_parameters'] / 1e6:.1f}M parameters" if m.get("num_parameters") else "")
                       + ")" for m in ms)

    datasets: dict[str, tuple[set, set]] = {}  # label -> (prompt counts, prompt lengths)
    for r in results:
        d = r["dataset"]
        counts, lengths = datasets.setdefault(d["label"], (set(), set()))
        counts.add(d.get("num_prompts"))
        lengths.add(d.get("prompt_tokens"))
    commits = {(p.get("git_commit") or "")[:12] + (" (modified)" if p.get("git_dirty") else "") for p in prov}
    return {
        "Study": _unique(r["study"] for r in results),
        "Target": model("target"),
        "Draft": model("draft") if any(m.get("draft") for m in models) else "none",
        "Device": _unique(e.get("device_name") for e in env),
        "DeviceKind": _unique(e.get("device") for e in env),
        "Dtype": _unique(e.get("dtype") for e in env),
        "Threads": _unique(e.get("threads") for e in env),
        "MemoryKind": _unique(e.get("memory_kind") for e in env),
        "Python": _unique(e.get("python") for e in env),
        "Torch": _unique(e.get("torch") for e in env),
        "Transformers": _unique(e.get("transformers") for e in env),
        "Cuda": _unique(e.get("cuda") for e in env),
        "Decodebench": _unique(e.get("decodebench") for e in env),
        "Platform": _unique(e.get("platform") for e in env),
        "Commit": _unique(c for c in commits if c.strip()),
        "Datasets": "; ".join(f"{label} ({_unique(c)} prompts of {_unique(n)} tokens)"
                              for label, (c, n) in sorted(datasets.items())),
        "Warmups": _unique(r["protocol"].get("warmups") for r in results),
        "Repeats": _unique(r["protocol"].get("repeats") for r in results),
        "MaxNewTokens": _unique(r["protocol"].get("max_new_tokens") for r in results),
        "Seed": _unique(r["protocol"].get("seed") for r in results),
        "StopRule": {frozenset([False]): "never stopping early at end-of-sequence",
                     frozenset([True]): "stopping at end-of-sequence"}.get(
            frozenset(r["protocol"].get("stop_at_eos") for r in results), "end-of-sequence handling per experiment"),
        "Kinds": _unique(r["kind"] for r in results),
        "NumResults": str(len(results)),
        "NumPrompts": _unique(r["protocol"].get("prompts_measured") for r in results),
    }


def setup_table(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(sorted(setup_values(results).items()), columns=list(COLUMNS))


def setup_files(paths: Sequence[str | Path]) -> pd.DataFrame:
    return setup_table([load_result(p) for p in sorted(map(str, paths))])


def table_text(table: pd.DataFrame) -> str:
    """The CSV text, exactly as written (check compares files with it)."""
    return table.to_csv(index=False, lineterminator="\n")


def write_setup_table(table: pd.DataFrame, path: str | Path) -> None:
    atomic_write_text(path, table_text(table))


def read_setup(path: str | Path) -> dict[str, str]:
    """{name: value} of a setup table (every value a string, as written)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return dict(zip(table["name"], table["value"]))
