"""The tuning stage: method parameters chosen on prompts the paper does not report.

Papers report each method at tuned settings; tuning on the reported prompts inflates every
number. A config's ``tune:`` block names a prompt set (``tune.dataset``, disjoint by document
from the reported ones: the same loader and seed with ``skip``) and a grid per method id
(``tune.grid``, expanded like a sweep). ``config.expand_config`` turns it into the experiment
``tune`` (AR and every grid point, measured paired like any other experiment); then

    picks = compute_picks(cfg, tuning_results)          # per method id: the best grid point
    write_picks(layout.tuned_path(study), picks)        # results/tables/<study>/tuned.json

The pick of a method id is its grid point with the highest paired speedup over AR
(``paired.paired_speedup``: the mean over prompts of the per-prompt tokens/s ratios); ties go
to the first in grid order. A method configuration with ``tuned: true`` takes the pick's
parameters (``jobs.resolve_job``), and its job records ``tuning`` = {method id, pick, the
picks file's SHA-256, the tuning prompt set's SHA-256}: re-tuning makes its result stale.
``decodebench check`` (rule ``tuning``) recomputes the pick from the tuning results the picks
file lists (with their SHA-256) and verifies that the tuning prompts share no document with the
reported ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import layout
from .config import TUNE_EXPERIMENT, ConfigError, config_label
from .paired import paired_speedup
from .results import atomic_write_text, file_sha256

CRITERION = ("paired speedup over AR on the tuning prompts: mean over prompts of the per-prompt "
             "tokens/s ratio (decodebench.paired); the highest wins, ties to the first in grid order")


def prompt_document(prompt_id: str) -> str:
    """The document a prompt was cut from: ``<loader>:<document>:<offset>`` -> ``<loader>:<document>``."""
    parts = str(prompt_id).split(":")
    return ":".join(parts[:-1]) if len(parts) >= 3 else str(prompt_id)


def compute_picks(cfg: dict, tuning: dict[str, tuple[str, dict, str]]) -> dict:
    """The picks from the tuning results: `tuning` maps each configuration of the experiment
    ``tune`` to (its result file's path relative to the root, the loaded result, its SHA-256)."""
    where = config_label(cfg)
    exp = cfg["experiments"][TUNE_EXPERIMENT]
    missing = sorted(set(exp["methods"]) - set(tuning))
    if missing:
        raise ConfigError(f"{where}: tuning results missing for {', '.join(missing)} (run the experiment "
                          f"'{TUNE_EXPERIMENT}' first)")
    order = {name: i for i, name in enumerate(exp["methods"])}
    entries = sorted(tuning.values(), key=lambda e: order.get(e[1]["method"]["name"], len(order)))
    picks = best_per_method(entries, exp["baseline"])
    unknown = sorted(set(picks["families"]) - set(cfg["tune"]["grid"]))
    if unknown:
        raise ConfigError(f"{where}: tuning results of method ids {', '.join(unknown)} are not in tune.grid")
    return {"study": cfg["study"], **picks}


def best_per_method(entries: list[tuple[str, dict, str]], baseline: str) -> dict:
    """Per method id of the tuning results (path, result, SHA-256), in grid order: every
    candidate's paired speedup over the configuration `baseline` and the best one."""
    named = {res["method"]["name"]: (path, res) for path, res, _ in entries}
    if baseline not in named:
        raise ConfigError(f"tuning results: no result of the baseline '{baseline}'")
    base_path, base = named[baseline]
    families: dict[str, dict] = {}
    for path, res, _ in entries:
        if res["method"]["name"] == baseline:
            continue
        s = paired_speedup(res["records"] or [], base["records"] or [])
        if s.estimate is None:
            raise ConfigError(f"{path}: no (prompt, repeat) pair with the baseline {base_path}; "
                              "the pick cannot be computed")
        family = families.setdefault(res["method"]["id"], {"candidates": []})
        family["candidates"].append({"name": res["method"]["name"], "params": res["method"]["params"],
                                     "speedup": s.estimate, "low": s.low, "high": s.high,
                                     "prompts": s.prompts, "pairs": s.pairs})
    for family in families.values():
        best = max(family["candidates"], key=lambda c: c["speedup"])  # max keeps the first of equals
        family.update(pick=best["name"], params=best["params"])
    prompt_ids = sorted({r["prompt_id"] for _, res, _ in entries for r in res["records"] or []})
    return {"experiment": base["experiment"], "dataset": base["dataset"]["name"],
            "prompt_sha256": base["dataset"]["prompt_sha256"], "prompt_ids": prompt_ids,
            "documents": sorted({prompt_document(p) for p in prompt_ids}), "criterion": CRITERION,
            "baseline": baseline, "families": families,
            "results": dict(sorted((path, sha) for path, _, sha in entries))}


def load_tuning_results(cfg: dict, root: str | Path = ".") -> dict[str, tuple[str, dict, str]]:
    """{configuration: (path relative to root, result, its file's SHA-256)} of the existing files."""
    from .results import load_result

    out = {}
    for rel in layout.result_files(cfg, TUNE_EXPERIMENT):
        path = Path(root) / rel
        if not path.exists():
            continue
        res = load_result(path)
        out[res["method"]["name"]] = (rel, res, file_sha256(path))
    return out


def write_picks(path: str | Path, picks: dict) -> None:
    atomic_write_text(path, json.dumps(picks, indent=1, allow_nan=False) + "\n")


def read_picks(cfg: dict, root: str | Path = ".") -> tuple[dict, str]:
    """The study's picks file and its SHA-256; a ConfigError naming what to run when absent."""
    path = Path(root) / layout.tuned_path(cfg["study"])
    if not path.exists():
        raise ConfigError(f"{path}: no tuning picks; run the tuning stage first (`snakemake --cores all "
                          f"{layout.tuned_path(cfg['study'])}`, or `decodebench tune --config "
                          f"{config_label(cfg)}` after the experiment '{TUNE_EXPERIMENT}')")
    try:
        picks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(picks, dict) or not isinstance(picks.get("families"), dict):
        raise ConfigError(f"{path}: field 'families': expected an object of picks per method id")
    return picks, file_sha256(path)


def tuned_params(cfg: dict, method_id: str, root: str | Path = ".") -> tuple[dict, dict]:
    """(the pick's params, the job's ``tuning`` record) for a ``tuned: true`` configuration."""
    picks, sha = read_picks(cfg, root)
    family = picks["families"].get(method_id)
    if not isinstance(family, dict) or not isinstance(family.get("params"), dict):
        raise ConfigError(f"{Path(root) / layout.tuned_path(cfg['study'])}: families.{method_id}: no pick "
                          "(re-run the tuning stage: the config's tune.grid changed?)")
    return dict(family["params"]), {"method": method_id, "pick": family["pick"], "picks_sha256": sha,
                                    "prompt_sha256": picks.get("prompt_sha256")}
