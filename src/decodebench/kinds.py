"""Experiment kinds: what an experiment's rendering shows, declared once per kind.

Each kind lists the files its renderer writes (relative to ``paper/generated/``; a figure is a
``.pdf`` and a ``.png``; ``{id}`` stands for the experiment's id, ``{dimension}`` for each
setting of the experiment's ``vary``, one file each) and names its renderer, a
function of ``decodebench.render``, and the function of ``decodebench.headlines`` that chooses
the numbers its prose cites by name (both by name, so that this module stays light: Snakemake
imports it to plan). An experiment's kind is its config's ``kind``; an experiment whose id is a kind's
name may leave ``kind`` out. Any other experiment without ``kind`` is a config error: nothing
falls back silently to the generic table.

The renderers' tables are fixed names that ``paper/main.tex`` inputs, so a study has at most
one experiment of each kind except ``generic`` (whose table is named after the experiment).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    artifacts: tuple[str, ...]
    renderer: str  # a function of decodebench.render: (context, experiment id, table) -> None
    picks: str | None  # a function of decodebench.headlines choosing the macros the prose cites
    shows: str


KINDS = {k.name: k for k in (
    Kind("main", ("tables/main.tex", "tables/latency.tex", "tables/acceptance.tex", "figures/main"), "render_main", "main_picks",
         "throughput and paired speedup per dataset, latency, acceptance"),
    Kind("memory", ("tables/memory.tex",), "render_memory", "memory_picks", "peak memory and its change relative to the baseline"),
    Kind("length", ("figures/length",), "render_length", "length_picks", "throughput and speedup against the generation budget"),
    Kind("prompt_length", ("figures/prompt_length",), "render_prompt_length", "prompt_length_picks",
         "throughput and speedup against the prompt length"),
    Kind("sweep", ("tables/sweep.tex", "figures/sweep"), "render_sweep", "sweep_picks",
         "the best configuration of each swept method, and the grid"),
    Kind("ablation", ("tables/ablation.tex",), "render_ablation", "ablation_picks", "one row per step of an ablation, in config order"),
    Kind("multisample", ("tables/multisample.tex", "figures/multisample"), "render_multisample", "multisample_picks",
         "multi-sample speedup and memory next to the samples' quality"),
    Kind("multisample_sweep", ("tables/multisample_sweep.tex", "figures/multisample_sweep_{dimension}"),
         "render_multisample_sweep", "multisample_sweep_picks",
         "multi-sample speedup and sample quality against each varied setting, one figure per setting"),
    Kind("leaderboard", ("tables/leaderboard.tex", "tables/leaderboard.md", "figures/leaderboard"),
         "render_leaderboard", "leaderboard_picks", "Spec-Bench's leaderboard layout"),
    Kind("generic", ("tables/{id}.tex",), "render_generic", None, "throughput, speedup and peak memory"),
)}


def experiment_kind(experiment: str, exp: dict) -> str:
    """The kind of an (expanded, checked) experiment: its ``kind``, or its id when the id names one."""
    kind = exp.get("kind") or (experiment if experiment in KINDS else None)
    if kind is None:
        raise ValueError(f"experiments.{experiment}: no kind (expected kind: one of {', '.join(KINDS)})")
    return kind


def kind_problems(experiments: dict) -> list[str]:
    """Config errors of the experiments' kinds: missing where the id names none, unknown, or two
    experiments of one kind other than generic (their files would overwrite each other)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for e, exp in experiments.items():
        kind = exp.get("kind") or (e if e in KINDS else None)
        if kind is None:
            problems.append(f"experiments.{e}: no kind, and '{e}' names none (expected kind: one of "
                            f"{', '.join(KINDS)}; 'generic' is the plain results table)")
        elif kind not in KINDS:
            problems.append(f"experiments.{e}.kind: unknown kind '{kind}' (expected one of {', '.join(KINDS)})")
        elif kind != "generic" and kind in seen:
            problems.append(f"experiments.{e}: a second experiment of kind '{kind}' (the first is "
                            f"'{seen[kind]}'; their files would overwrite each other)")
        else:
            seen.setdefault(kind, e)
    return problems


def kind_artifacts(experiment: str, kind: str, exp: dict | None = None) -> tuple[str, ...]:
    """The kind's files for one experiment: ``{id}`` filled in, ``{dimension}`` once per setting
    of the experiment's ``vary`` (none without one)."""
    out: list[str] = []
    for a in KINDS[kind].artifacts:
        dimensions = list((exp or {}).get("vary", {})) if "{dimension}" in a else [None]
        out += [a.format(id=experiment, dimension=d) for d in dimensions]
    return tuple(out)


def report_caption(figure: str) -> str:
    """The name of a figure's caption in the report (``workflow/report/<name>.rst``): the
    figure's own name; figures written once per varied setting share their kind's."""
    stem = figure.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for kind in KINDS.values():
        for a in kind.artifacts:
            head = a.rsplit("/", 1)[-1].split("{dimension}")[0]
            if "{dimension}" in a and stem.startswith(head):
                return head.rstrip("_")
    return stem
