"""The path scheme of a study, in one place (light: no pandas, no torch, so Snakemake plans fast).

    results/raw/<study>/<experiment>/<dataset>/<method>.json   result_path
    results/tables/<study>/<experiment>.csv                    table_path
    results/tables/<study>/setup.csv                           setup_path (the setup section's values)
    results/tables/<study>/tuned.json                          tuned_path (the tuning picks)
    paper/generated/{tables,figures}/..., numbers.tex, ...     artifacts
    results/MANIFEST.json                                      MANIFEST

Which files are rendered depends on the config only, so Snakemake knows them before anything
runs: an experiment's kind (``decodebench.kinds``) lists its artifacts.
"""

from __future__ import annotations

import re
from pathlib import Path

from .kinds import experiment_kind, kind_artifacts

GENERATED = "paper/generated"
MANIFEST = "results/MANIFEST.json"
COMMON = ("numbers.tex", "setup.tex", "study.tex")


def result_path(study: str, experiment: str, dataset: str, method: str) -> str:
    return f"results/raw/{study}/{experiment}/{dataset}/{method}.json"


def table_path(study: str, experiment: str) -> str:
    return f"results/tables/{study}/{experiment}.csv"


def setup_path(study: str) -> str:
    """The study's setup table (decodebench.study_setup): the paper's setup values."""
    return f"results/tables/{study}/setup.csv"


def tuned_path(study: str) -> str:
    """The tuning stage's picks (decodebench.tuning)."""
    return f"results/tables/{study}/tuned.json"


def tuned_experiment(cfg: dict, experiment: str) -> bool:
    """Whether some configuration of the experiment takes its parameters from the tuning picks."""
    return any(spec.get("tuned") for spec in cfg["experiments"][experiment]["methods"].values())


def imported(cfg: dict) -> bool:
    """Whether the study's results come from `decodebench import` instead of benchmark jobs."""
    return bool(cfg.get("import"))


def result_files(cfg: dict, experiment: str) -> list[str]:
    """The experiment's result files (relative to the repository root), from the (expanded) config: one per
    dataset and method configuration; for imported studies, the configured subset of what the
    importer wrote (a method configuration may list its datasets; configured_results)."""
    if imported(cfg):
        base = Path("results") / "raw" / cfg["study"]
        return [str(base / p) for p in configured_results(cfg) if p.parts[0] == experiment]
    exp = cfg["experiments"][experiment]
    return [result_path(cfg["study"], experiment, d, m) for d in exp["datasets"] for m in exp["methods"]]


def study_result_files(cfg: dict) -> list[str]:
    """Every result file of the study, experiment by experiment in name order."""
    return [f for e in sorted(cfg["experiments"]) for f in result_files(cfg, e)]


def configured_results(cfg: dict) -> list[Path]:
    """``<experiment>/<dataset>/<method>.json`` for every result an expanded config expects.

    A method configuration exists for the datasets it lists (with their prompt-length variants
    ``<dataset>_p<L>``), or else for all of its experiment's (``config.check_references`` has
    checked that the listed datasets are the experiment's).
    """
    out = []
    for ename, exp in cfg["experiments"].items():
        base = {d: d.rsplit("_p", 1)[0] if "prompt_lengths" in exp else d for d in exp["datasets"]}
        for mname, spec in exp["methods"].items():
            only = spec.get("datasets")
            out += [Path(ename) / d / f"{mname}.json" for d in exp["datasets"] if only is None or base[d] in only]
    return out


PAIRINGS = ("interleaved", "per_method")


def pairing(cfg: dict, experiment: str) -> str:
    """protocol.pairing of an experiment (its own, else the study's; default interleaved)."""
    exp = cfg["experiments"][experiment]
    return (exp.get("protocol") or {}).get("pairing") or (cfg.get("protocol") or {}).get("pairing") or "interleaved"


def benchmark_groups(cfg: dict) -> list[dict]:
    """The benchmark jobs of a measured study: one per (experiment, dataset) measuring every
    method configuration of the experiment interleaved (pairing ``interleaved``), or one per
    configuration (``per_method``). Each: {experiment, dataset, pairing, methods, outputs,
    name}, the methods in the config's order (the harness rotates it per prompt and repeat).
    ``name`` is the Snakemake rule: ``benchmark_<experiment>_<dataset>`` for a paired group (one
    rule each: a rule's outputs are fixed patterns), ``benchmark`` (one wildcard rule) per method."""
    groups = []
    for e, exp in cfg["experiments"].items():
        mode = pairing(cfg, e)
        for d in exp["datasets"]:
            members = [list(exp["methods"])] if mode == "interleaved" else [[m] for m in exp["methods"]]
            for methods in members:
                groups.append({
                    "experiment": e, "dataset": d, "pairing": mode, "methods": methods,
                    "outputs": [result_path(cfg["study"], e, d, m) for m in methods],
                    "name": re.sub(r"\W", "_", f"benchmark_{e}_{d}") if mode == "interleaved" else "benchmark",
                })
    return groups


def experiment_artifacts(cfg: dict, experiment: str) -> list[str]:
    """Files (relative to the repository root) rendered for one experiment (by its kind)."""
    exp = cfg["experiments"][experiment]
    names = kind_artifacts(experiment, experiment_kind(experiment, exp), exp)
    out = []
    for n in names:
        out += [f"{GENERATED}/{n}.pdf", f"{GENERATED}/{n}.png"] if n.startswith("figures/") else [f"{GENERATED}/{n}"]
    return out


def artifacts(cfg: dict) -> dict[str, list[str]]:
    """{artifact path: experiments it is rendered from}, known from the config alone."""
    out = {f"{GENERATED}/{n}": sorted(cfg["experiments"]) for n in COMMON}
    for e in cfg["experiments"]:
        for a in experiment_artifacts(cfg, e):
            out[a] = [e]
    return dict(sorted(out.items()))


def figures(cfg: dict) -> list[str]:
    """The PNG figures (for the report)."""
    return [a for a in artifacts(cfg) if a.endswith(".png")]
