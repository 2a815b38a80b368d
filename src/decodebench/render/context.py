"""What every renderer works with: the render context and an experiment's aggregated table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from .. import analysis
from ..layout import GENERATED
from ..results import atomic_write_text
from .latex import Formats, latex_escape, missing


@dataclass
class Aggregated:
    """An experiment's long-format table (``decodebench.analysis``) and its per-dataset rows,
    rows of means over datasets and headline picks, reshaped for layout (nothing computed)."""
    long: pd.DataFrame
    wide: pd.DataFrame = field(init=False)
    across: pd.DataFrame = field(init=False)
    picks: pd.DataFrame = field(init=False)

    def __post_init__(self):
        self.wide = analysis.wide_table(self.long, "dataset")
        self.across = analysis.wide_table(self.long, "across datasets")
        self.picks = analysis.picks_of(self.long)


@dataclass
class Context:
    cfg: dict
    root: Path
    out: Path
    fmt: Formats
    env: jinja2.Environment
    tables: dict  # experiment -> Aggregated
    numbers: list  # (macro name or (experiment, dataset, method, metric) key, Markup value, comment)
    flags: list  # names of non-empty artifacts

    def write_table(self, name: str, template: str, **data) -> None:
        text = self.env.get_template(template).render(fmt=self.fmt, **data)
        atomic_write_text(self.out / GENERATED / "tables" / f"{name}.tex", text)

    def number(self, name, value, comment: str = "") -> None:
        self.numbers.append((name, latex_escape(value) if not isinstance(value, Markup) else value, comment))


# ----------------------------------------------------------------------------- frame helpers

def datasets_of(df) -> list[tuple[str, str]]:
    """(name, label) in table order; variants of one dataset (same label, prompt_lengths)
    are told apart by their prompt length."""
    seen: dict = {}
    tokens: dict = {}
    for _, r in df.iterrows():
        seen.setdefault(r["dataset"], r["dataset_label"])
        tokens.setdefault(r["dataset"], r.get("prompt_tokens_config"))
    labels = list(seen.values())
    return [(d, f"{lab}, {int(tokens[d])} tokens" if labels.count(lab) > 1 and not missing(tokens[d]) else lab)
            for d, lab in seen.items()]


def methods_of(df) -> list[tuple[str, str]]:
    seen: dict = {}
    for _, r in df.sort_values(["method_order"], kind="stable").iterrows():
        seen.setdefault(r["method"], r["method_label"])
    return list(seen.items())


def value_at(df, dataset, method, col):
    sel = df[(df["dataset"] == dataset) & (df["method"] == method)]
    if sel.empty or col not in sel:
        return None
    v = sel.iloc[0][col]
    return None if missing(v) else v


