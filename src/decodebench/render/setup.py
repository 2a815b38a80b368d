"""The setup section's values (``setup.tex``), from the result files' provenance, and what the
study's config relaxes in `decodebench check`."""

from __future__ import annotations

from ..layout import GENERATED
from ..results import atomic_write_text
from .context import Context


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


def check_exceptions(cfg: dict) -> str:
    """What the study's config relaxes in `decodebench check`, for the reproducibility section:
    each acknowledged rule with its files and reason, and a baseline CV threshold above the
    default (docs/check.md)."""
    from ..config import DEFAULT_CV_THRESHOLD

    check = cfg.get("check") or {}
    out = [f"{a['rule']} ({a.get('files', 'every file')}): {' '.join(a['reason'].split())}"
           for a in check.get("acknowledge") or []]
    if check.get("cv_threshold", DEFAULT_CV_THRESHOLD) > DEFAULT_CV_THRESHOLD:
        out.append(f"baseline-stability threshold {check['cv_threshold']:g} instead of {DEFAULT_CV_THRESHOLD:g}")
    return "; ".join(out) if out else "none"


def write_setup(ctx: Context, results: list[dict]) -> None:
    values = {**setup_values(results), "CheckExceptions": check_exceptions(ctx.cfg)}
    text = ctx.env.get_template("setup.tex").render(values=values)
    atomic_write_text(ctx.out / GENERATED / "setup.tex", text)


