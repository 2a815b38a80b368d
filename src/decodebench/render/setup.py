"""The setup section (``setup.tex``): the study's setup table (``decodebench.study_setup``,
aggregated from the result files' provenance) and what the study's config relaxes in
`decodebench check`."""

from __future__ import annotations

from ..layout import GENERATED
from ..results import atomic_write_text
from .context import Context


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


def write_setup(ctx: Context, setup: dict[str, str]) -> None:
    """setup.tex: a \\Setup<Name> macro per row of the setup table, and the check's exceptions."""
    values = {**setup, "CheckExceptions": check_exceptions(ctx.cfg)}
    text = ctx.env.get_template("setup.tex").render(values=values)
    atomic_write_text(ctx.out / GENERATED / "setup.tex", text)
