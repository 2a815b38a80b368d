"""The rows of one setting a ``vary`` experiment varies (``config.vary_methods``): a reshape of
an experiment's per-dataset rows, for its picks (``decodebench.headlines``) and its figures."""

from __future__ import annotations

import pandas as pd


def vary_column(dimension: str) -> str:
    """The table column holding a row's value of a ``vary`` setting."""
    return {"num_samples": "num_samples_config", "temperature": "temperature_config",
            "max_new_tokens": "max_new_tokens"}.get(dimension, f"param_{dimension}")


def vary_slice(wide: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The rows of one varied setting: the experiment's own configurations and their variants of
    that setting (``config.vary_methods``), with the setting's value in column ``x`` (missing for a
    configuration whose method has no such parameter, e.g. the baseline of an EAB parameter)."""
    rows = wide[wide["varied"].isna() | (wide["varied"] == dimension)].copy()
    column = vary_column(dimension)
    rows["x"] = rows[column].astype("Float64") if column in rows else pd.array([None] * len(rows), dtype="Float64")
    return rows
