"""The path scheme of a study, in one place (light: no pandas, no torch, so Snakemake plans fast).

    results/raw/<study>/<experiment>/<dataset>/<method>.json   result_path
    results/tables/<study>/<experiment>.csv                    table_path
    paper/generated/{tables,figures}/..., numbers.tex, ...     artifacts
    results/MANIFEST.json                                      MANIFEST

Which files are rendered depends on the config only, so Snakemake knows them before anything
runs: each experiment id with its own renderer in ``decodebench.render`` lists its artifacts
in ``EXPERIMENT_ARTIFACTS``; any other id gets one generic table, ``tables/<id>.tex``.
"""

from __future__ import annotations

from pathlib import Path

GENERATED = "paper/generated"
MANIFEST = "results/MANIFEST.json"
COMMON = ("numbers.tex", "setup.tex", "study.tex")
# experiment id -> artifacts relative to paper/generated/ (a figure: a .pdf and a .png)
EXPERIMENT_ARTIFACTS = {
    "main": ("tables/main.tex", "tables/latency.tex", "tables/acceptance.tex", "figures/main"),
    "memory": ("tables/memory.tex",),
    "length": ("figures/length",),
    "prompt_length": ("figures/prompt_length",),
    "sweep": ("tables/sweep.tex", "figures/sweep"),
    "ablation": ("tables/ablation.tex",),
    "multisample": ("tables/multisample.tex", "figures/multisample"),
    "leaderboard": ("tables/leaderboard.tex", "tables/leaderboard.md", "figures/leaderboard"),
}


def result_path(study: str, experiment: str, dataset: str, method: str) -> str:
    return f"results/raw/{study}/{experiment}/{dataset}/{method}.json"


def table_path(study: str, experiment: str) -> str:
    return f"results/tables/{study}/{experiment}.csv"


def imported(cfg: dict) -> bool:
    """Whether the study's results come from `decodebench import` instead of benchmark jobs."""
    return bool(cfg.get("import"))


def result_files(cfg: dict, experiment: str) -> list[str]:
    """The experiment's result files (relative to the repository root), from the (expanded) config: one per
    dataset and method configuration; for imported studies, the configured subset of what the
    importer wrote (a method configuration may list its datasets; importers.configured_results)."""
    if imported(cfg):
        from .importers import configured_results  # only for imported studies: it loads the schema

        base = Path("results") / "raw" / cfg["study"]
        return [str(base / p) for p in configured_results(cfg) if p.parts[0] == experiment]
    exp = cfg["experiments"][experiment]
    return [result_path(cfg["study"], experiment, d, m) for d in exp["datasets"] for m in exp["methods"]]


def experiment_artifacts(experiment: str) -> list[str]:
    """Files (relative to the repository root) rendered for one experiment."""
    names = EXPERIMENT_ARTIFACTS.get(experiment, (f"tables/{experiment}.tex",))
    out = []
    for n in names:
        out += [f"{GENERATED}/{n}.pdf", f"{GENERATED}/{n}.png"] if n.startswith("figures/") else [f"{GENERATED}/{n}"]
    return out


def artifacts(cfg: dict) -> dict[str, list[str]]:
    """{artifact path: experiments it is rendered from}, known from the config alone."""
    out = {f"{GENERATED}/{n}": sorted(cfg["experiments"]) for n in COMMON}
    for e in cfg["experiments"]:
        for a in experiment_artifacts(e):
            out[a] = [e]
    return dict(sorted(out.items()))


def figures(cfg: dict) -> list[str]:
    """The PNG figures (for the report)."""
    return [a for a in artifacts(cfg) if a.endswith(".png")]
