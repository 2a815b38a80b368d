"""LaTeX formatting: escaping, number formats, table cells with "best" marking, the templates.

Templates (``templates/*.tex``) use LaTeX-safe delimiters: ``\\VAR{x}``, ``\\BLOCK{...}``,
``\\#{comment}``. Every string that reaches a template is LaTeX-escaped unless it is a
``Markup`` built here (numbers in ``\\num{}``, bold cells). The best value of a column is bold
(all values that equal it once formatted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ..config import schema_defaults

# Decimal places per kind of number (the schema's defaults); a config's `formats` overrides them.
DEFAULT_FORMATS = schema_defaults("formats")

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(value) -> Markup:
    """Text safe in LaTeX: every special character escaped; Markup passes unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(_LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(value)))


def missing(x) -> bool:
    """None, NaN or pandas' NA."""
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


class Formats:
    """Number formatting with the config's decimal places (``formats``)."""

    def __init__(self, cfg: dict):
        self.digits = {**DEFAULT_FORMATS, **cfg.get("formats", {})}

    def text(self, x, kind: str, sign: bool = False) -> str | None:
        """Plain number text (rounded), or None when missing."""
        if missing(x):
            return None
        return f"{float(x):{'+' if sign else ''}.{self.digits[kind]}f}"

    def num(self, x, kind: str, std=None, sign: bool = False) -> Markup:
        """``\\num{12.3 \\pm 0.4}``; ``--`` when missing."""
        t = self.text(x, kind, sign)
        if t is None:
            return Markup("--")
        s = self.text(std, kind)
        return Markup(rf"\num{{{t} \pm {s}}}" if s is not None else rf"\num{{{t}}}")

    def speedup(self, x, low=None, high=None) -> Markup:
        """``1.23x``, with its 95 % interval ``[1.10, 1.35]`` in small type when there is one."""
        t = self.text(x, "speedup")
        if t is None:
            return Markup("--")
        lo, hi = self.text(low, "speedup"), self.text(high, "speedup")
        interval = rf" {{\scriptsize[\num{{{lo}}}, \num{{{hi}}}]}}" if lo is not None and hi is not None else ""
        return Markup(rf"\num{{{t}}}\(\times\){interval}")

    def pct(self, x) -> Markup:
        t = self.text(x, "relative_change_pct", sign=True)
        return Markup("--") if t is None else Markup(rf"\num{{{t}}}\,\%")


@dataclass
class Cell:
    """One table cell: its LaTeX, and the value that decides 'best' (None: not compared)."""
    tex: Markup
    key: str | None = None  # the rounded value compared for bold

    def bold(self) -> Cell:
        return Cell(Markup(rf"\textbf{{{self.tex}}}"), self.key)


def bold_best(rows: list[list[Cell]], columns: dict[int, str]) -> list[list[Cell]]:
    """Bold the best cell(s) of each column index in `columns` ('max' or 'min');
    ties (equal once rounded) are all bold."""
    rows = [list(r) for r in rows]
    for col, direction in columns.items():
        keys = [float(k) for r in rows if (k := r[col].key) is not None]
        if len(keys) < 2:
            continue
        best = max(keys) if direction == "max" else min(keys)
        for r in rows:
            if (k := r[col].key) is not None and float(k) == best:
                r[col] = r[col].bold()
    return rows


# ----------------------------------------------------------------------------- templates

def template_env(root: Path):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(root) / "templates")),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_comment_prefix="%#", trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False, undefined=jinja2.StrictUndefined,
        finalize=latex_escape,  # every \VAR{} output is escaped unless it is Markup
    )
    env.filters["tex"] = Markup  # template text (captions), never data
    env.filters["csname"] = csname
    env.filters["macro"] = macro
    return env


def csname(value) -> Markup:
    """A name used inside \\csname (experiment, dataset, method ids): checked, not escaped."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(value)):
        raise ValueError(f"'{value}' cannot be used in a LaTeX macro key (letters, digits, _ . + - only)")
    return Markup(str(value))


def macro(value) -> Markup:
    if not re.fullmatch(r"[A-Za-z]+", str(value)):
        raise ValueError(f"'{value}' is not a LaTeX macro name (letters only)")
    return Markup(str(value))


