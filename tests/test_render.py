"""Rendering on a synthetic study with every experiment kind: escaping, bold best values,
deterministic output, the manifest, configurable number formats, and the paper compiling."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pipeline.synthetic import record, result, write

from decodebench.analysis import aggregate_files, write_table
from decodebench.config import expand_config, validate_config
from decodebench.layout import artifacts, result_files, setup_path, study_result_files, table_path
from decodebench.method_params import resolve_params
from decodebench.render import Cell, Formats, bold_best, latex_escape, render_all
from decodebench.results import file_sha256
from decodebench.study_setup import setup_files, write_setup_table

REPO = Path(__file__).resolve().parents[1]
LABEL = "Docs & more_1 #%$"

# Throughput per method id (tokens/s) and peak memory (MiB): known numbers, so that the best
# value of each column is known.
SPEED = {"ar": 10.0, "pld": 12.0, "linear": 20.0, "tree": 30.0, "dynatree": 35.0, "naive": 10.0, "eab_cow": 10.0,
         "shared_prefill": 10.0, "eab_shared_prefix": 10.0}
PEAK = {"ar": 100.0, "pld": 101.0, "linear": 120.0, "tree": 150.0, "dynatree": 140.0, "naive": 400.0, "eab_cow": 200.0,
        "shared_prefill": 250.0, "eab_shared_prefix": 200.0}


def study_config() -> dict:
    ds = {"loader": "jsonl", "path": "docs.jsonl", "num_prompts": 2, "prompt_tokens": 16}
    return {
        "study": "synth", "device": "cpu", "dtype": "float32",
        "models": {"target": {"name": "t", "path": "/x"}},
        "datasets": {"docs": {**ds, "label": LABEL}, "wiki": {**ds, "label": "WikiText-2"}},
        "protocol": {"max_new_tokens": 10},
        "formats": {"speedup": 3},
        "experiments": {
            "main": {"baseline": "ar", "datasets": ["docs", "wiki"],
                     "methods": {"ar": {"method": "ar"}, "linear_k4": {"method": "linear", "label": "Linear K=4"},
                                 "tree": {"method": "tree"}}},
            "memory": {"baseline": "ar", "datasets": ["docs", "wiki"],
                       "methods": {"ar": {"method": "ar"}, "tree": {"method": "tree"}}},
            "length": {"baseline": "ar", "datasets": ["docs"], "generation_lengths": [8, 16],
                       "methods": {"ar": {"method": "ar"}, "tree": {"method": "tree"}}},
            "prompt_length": {"baseline": "ar", "datasets": ["wiki"], "prompt_lengths": [32, 64],
                              "methods": {"ar": {"method": "ar"}, "tree": {"method": "tree"}}},
            "sweep": {"baseline": "ar", "datasets": ["docs"], "methods": {"ar": {"method": "ar"}},
                      "sweep": {"tree": {"depth": [2, 4], "branching": [2, 3], "tau": [0.05, 0.1]},
                                "linear": {"k": [2, 4]}}},
            "ablation": {"baseline": "ar", "datasets": ["docs"],
                         "methods": {"ar": {"method": "ar"}, "fixed": {"method": "tree"},
                                     "adaptive": {"method": "dynatree"}}},
            "multisample": {"baseline": "naive", "datasets": ["wiki"], "prompt_lengths": [32, 64],
                            "methods": {"naive": {"method": "naive"}, "eab_cow": {"method": "eab_cow"}}},
            "ms_sweep": {"kind": "multisample_sweep", "baseline": "sp", "datasets": ["wiki"],
                         "protocol": {"num_samples": 4, "temperature": 1.0},
                         "methods": {"sp": {"method": "shared_prefill", "label": "Shared prefill"},
                                     "eab": {"method": "eab_shared_prefix", "label": "EAB"}},
                         "vary": {"num_samples": [2, 4, 8], "temperature": [0.7, 1.0],
                                  "entropy_threshold": [0.1, 0.25], "branch_factor": [2, 5]}},
            "extra": {"kind": "generic", "baseline": "ar", "datasets": ["docs"],
                      "methods": {"ar": {"method": "ar"}, "pld": {"method": "pld"}}},
        },
    }


def synthesize(root: Path, raw_cfg: dict) -> dict:
    """Write a result file per job of the config and the aggregated tables; return the expanded config."""
    validate_config(raw_cfg)
    cfg = expand_config(raw_cfg)
    for e, exp in cfg["experiments"].items():
        for d in exp["datasets"]:
            for m, spec in exp["methods"].items():
                mid, params, protocol = spec["method"], spec.get("params", {}), spec.get("protocol", {})
                if mid in ("shared_prefill", "eab_shared_prefix"):  # as the harness records them: with defaults
                    params = resolve_params(mid, params)
                samples = protocol.get("num_samples", 4)
                speed = SPEED[mid] * (1 + 0.1 * params.get("depth", 0) + 0.01 * params.get("k", 0))
                # multi-sample: new tokens = samples x 10; EAB's time grows with its threshold
                new = 10 * samples if mid in ("naive", "shared_prefill") else 5 * samples if mid in (
                    "eab_cow", "eab_shared_prefix") else 10
                speed /= 1 + params.get("entropy_threshold", 0)
                extra = {"rounds": 4, "acceptance_rate": 0.6, "tokens_per_round": 2.5} if mid not in (
                    "ar", "naive", "eab_cow", "shared_prefill", "eab_shared_prefix") else {}
                quality = (lambda i: {"distinct_2": 0.61, "self_bleu": 0.37, "nll_per_token_error": -0.45 - 0.1 * i}
                           ) if mid in ("eab_cow", "eab_shared_prefix") else (
                    lambda i: {"distinct_2": 0.8, "self_bleu": 0.2, "nll_per_token_error": 0.01 * i}
                ) if mid == "shared_prefill" else (lambda i: {})
                recs = [record(i, speed * (1 + 0.1 * i), PEAK[mid] + i, PEAK[mid] / 10, new_tokens=new, **extra,
                               **quality(i)) for i in range(2)]
                write(root, result(cfg["study"], e, d, m, mid, recs, params=params, label=spec.get("label"),
                                   dataset_label=cfg["datasets"][d]["label"],
                                   prompt_tokens=cfg["datasets"][d]["prompt_tokens"],
                                   max_new_tokens=protocol.get("max_new_tokens", 10), num_samples=samples,
                                   temperature=protocol.get("temperature", 1.0)))
        write_table(aggregate_files(cfg, e, [root / f for f in result_files(cfg, e)]), root / table_path("synth", e))
    files = [root / f for f in study_result_files(cfg)]
    write_setup_table(setup_files(files), root / setup_path("synth"))
    return cfg


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    shutil.copytree(REPO / "templates", root / "templates")
    cfg = synthesize(root, study_config())
    manifest = render_all(cfg, root, root)
    return root, cfg, manifest


def test_latex_escape_covers_every_special_character():
    assert latex_escape("a & b_c %d $e #f {g} ~h ^i \\j") == (
        r"a \& b\_c \%d \$e \#f \{g\} \textasciitilde{}h \textasciicircum{}i \textbackslash{}j")
    assert latex_escape(latex_escape("_")) == r"\_"  # escaped once, never twice


def test_bold_best_marks_every_tie_and_respects_direction():
    rows = [[Cell("a", "1.50"), Cell("x", "3.0")], [Cell("b", "1.50"), Cell("y", "2.0")], [Cell("c", "1.20"), Cell("z", None)]]
    out = bold_best(rows, {0: "max", 1: "min"})
    assert [r[0].tex for r in out] == [r"\textbf{a}", r"\textbf{b}", "c"]
    assert [r[1].tex for r in out] == ["x", r"\textbf{y}", "z"]


def test_every_artifact_is_written_and_in_the_manifest(rendered):
    root, cfg, manifest = rendered
    assert set(manifest) == set(artifacts(cfg))
    for path, entry in manifest.items():
        assert entry["sha256"] == file_sha256(root / path)
        assert entry["inputs"], path
        for f, h in entry["inputs"].items():
            assert h == file_sha256(root / f)
    assert set(manifest["paper/generated/tables/memory.tex"]["inputs"]) == set(result_files(cfg, "memory"))


def test_strings_are_escaped_in_tables_and_setup(rendered):
    root, _, _ = rendered
    main = (root / "paper/generated/tables/main.tex").read_text()
    assert r"Docs \& more\_1 \#\%\$" in main
    assert "Docs & more" not in main
    assert r"Linear K=4" in main
    setup = (root / "paper/generated/setup.tex").read_text()
    assert r"\newcommand{\SetupMemoryKind}{process\_rss}" in setup


def test_reproducibility_lists_what_the_check_acknowledges_or_relaxes(rendered, tmp_path):
    """Issue 20, item 10: acknowledgements (with their reasons) and a relaxed baseline threshold
    reach the paper's reproducibility section through setup.tex."""
    from decodebench.layout import setup_path
    from decodebench.render import Context, template_env, write_setup
    from decodebench.study_setup import read_setup

    root, cfg, _ = rendered
    assert r"\newcommand{\SetupCheckExceptions}{none}" in (root / "paper/generated/setup.tex").read_text()
    relaxed = {**cfg, "check": {"cv_threshold": 1.0, "acknowledge": [
        {"rule": "contention", "files": "results/raw/synth/*/*/ar.json", "reason": "a shared machine, 50% busy"}]}}
    ctx = Context(cfg=relaxed, root=root, out=tmp_path, fmt=Formats(relaxed), env=template_env(root), tables={},
                  numbers=[], flags=[])
    write_setup(ctx, read_setup(root / setup_path(cfg["study"])))
    setup = (tmp_path / "paper/generated/setup.tex").read_text()
    assert (r"\newcommand{\SetupCheckExceptions}{contention (results/raw/synth/*/*/ar.json): a shared machine, 50\% "
            r"busy; baseline-stability threshold 1 instead of 0.15}") in setup, setup
    assert r"\SetupCheckExceptions" in (REPO / "paper" / "main.tex").read_text()


def test_best_value_is_bold_and_formats_follow_the_config(rendered):
    root, _, _ = rendered
    lines = (root / "paper/generated/tables/main.tex").read_text().splitlines()
    tree = next(line for line in lines if line.startswith("tree &"))
    ar = next(line for line in lines if line.startswith("ar &"))
    assert tree.count(r"\textbf") == 5  # tokens/s and speedup on both datasets, mean speedup
    assert r"\textbf" not in ar
    assert r"\num{3.000}\(\times\)" in tree  # formats.speedup: 3 decimals
    assert re.search(r"\\num\{31\.5 \\pm 2\.1\}", tree)  # tokens/s: 1 decimal, mean ± sample std
    memory = (root / "paper/generated/tables/memory.tex").read_text()
    assert r"\num{+49.75}\,\%" in memory.split("tab:memory-overhead")[0]  # tree: 150.5 vs 100.5 MiB
    assert r"\textbf{\num{100.5}}" in memory  # lowest peak is bold


def test_numbers_define_headline_and_keyed_values(rendered):
    root, _, _ = rendered
    numbers = (root / "paper/generated/numbers.tex").read_text()
    assert r"\newcommand{\MainBestMethod}{tree}" in numbers
    assert r"\newcommand{\MainBestSpeedup}{\num{3.000}\(\times\)}" in numbers
    assert r"\dbdef{main}{docs}{tree}{speedup}{\num{3.000}\(\times\)}" in numbers
    assert r"\newcommand{\MultisampleBestMethod}{eab\_cow}" in numbers
    assert r"\newcommand{\SweepBestConfig}{tree\_d4\_b2\_tau0.05}" in numbers
    sweep = (root / "paper/generated/tables/sweep.tex").read_text()
    assert "depth=4, branching=2, tau=0.05" in sweep and "k=4" in sweep


def test_multisample_speedup_and_memory_ratio(rendered):
    root, _, _ = rendered
    table = (root / "paper/generated/tables/multisample.tex").read_text()
    row = next(line for line in table.splitlines() if line.startswith(r"eab\_cow"))
    assert r"\num{2.000}\(\times\)" in row  # 20 tokens in half the time of naive's 40
    assert r"\num{0.50}" in row  # memory ratio 200/400
    # the samples' quality next to the speedup: distinct-2, self-BLEU, NLL error (mean +- std over prompts)
    assert r"\num{0.61} & \num{0.37} & \num{-0.50 \pm 0.07}" in row
    naive = next(line for line in table.splitlines() if line.startswith("naive"))
    assert naive.rstrip(" \\").endswith("-- & -- & --")  # no quality recorded: shown as missing


def test_multisample_sweep_table_and_a_figure_per_varied_setting(rendered):
    root, cfg, manifest = rendered
    for dimension in ("num_samples", "temperature", "entropy_threshold", "branch_factor"):
        for ext in ("pdf", "png"):
            assert f"paper/generated/figures/multisample_sweep_{dimension}.{ext}" in manifest
        assert f"dbhas@multisample_sweep_{dimension}" in (root / "paper/generated/study.tex").read_text()
    table = (root / "paper/generated/tables/multisample_sweep.tex").read_text()
    rows = [line.split(" & ")[0] for line in table.splitlines() if " & " in line and "multicolumn" not in line][1:]
    assert rows == ["Shared prefill", "EAB", "Shared prefill (N=2)", "EAB (N=2)", "Shared prefill (N=8)", "EAB (N=8)",
                    "Shared prefill (T=0.7)", "EAB (T=0.7)", "EAB (entropy threshold=0.1)", "EAB (branch factor=2)",
                    "EAB (branch factor=5)"]
    eab = next(line for line in table.splitlines() if line.startswith("EAB (N=2)"))
    assert r"\num{0.61} & \num{0.37} & \num{-0.50 \pm 0.07}" in eab  # its quality next to its speedup
    numbers = (root / "paper/generated/numbers.tex").read_text()
    assert r"\newcommand{\MultisampleSweepTemperatureLow}{0.7}" in numbers  # a setting as written
    assert r"\newcommand{\MultisampleSweepSamplesHigh}{8}" in numbers
    assert r"\newcommand{\MultisampleSweepThresholdMethodAtLow}{EAB}" in numbers


def test_rerender_is_byte_identical(rendered, tmp_path):
    root, cfg, manifest = rendered
    again = render_all(cfg, tmp_path, root)
    assert again == manifest
    for path in manifest:
        assert (tmp_path / path).read_bytes() == (root / path).read_bytes(), path


def test_formats_round_and_sign():
    fmt = Formats({"formats": {"memory_mib": 1, "relative_change_pct": 2}})
    assert fmt.num(1234.56, "memory_mib") == r"\num{1234.6}"
    assert fmt.pct(-3.14159) == r"\num{-3.14}\,\%"
    assert fmt.pct(2.0) == r"\num{+2.00}\,\%"
    assert fmt.speedup(None) == "--"


@pytest.mark.skipif(shutil.which("latexmk") is None,
                    reason="latexmk is not installed (make tex, or apt-get install latexmk texlive-latex-recommended "
                           "texlive-latex-extra texlive-science)")
def test_paper_compiles_with_every_experiment(rendered, tmp_path):
    root, _, _ = rendered
    paper = tmp_path / "paper"
    shutil.copytree(root / "paper", paper)
    for f in ("main.tex", "refs.bib"):
        shutil.copy(REPO / "paper" / f, paper / f)
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=build",
                           "main.tex"], cwd=paper, capture_output=True, text=True)
    log = (paper / "build" / "main.log").read_text(errors="replace") if (paper / "build" / "main.log").exists() else ""
    assert proc.returncode == 0, log[-3000:]
    assert "Undefined control sequence" not in log
    assert (paper / "build" / "main.pdf").stat().st_size > 10_000


def test_manifest_lists_study_results_only(rendered):
    _, cfg, manifest = rendered
    for entry in manifest.values():
        assert all(f.startswith("results/raw/synth/") for f in entry["inputs"])
    json.dumps(manifest)  # serialisable as MANIFEST.json


def test_a_headline_pick_never_names_the_baseline():
    import pandas as pd

    from decodebench.headlines import best_row

    df = pd.DataFrame({"method": ["ar_t16", "tree_t16"], "baseline": ["ar_t16", "ar_t16"],
                       "speedup": [1.0, 0.8], "speedup_kind": ["baseline", "paired"]})
    assert best_row(df, "speedup")["method"] == "tree_t16"  # slower than AR, still the pick among methods
    assert best_row(df.iloc[:1], "speedup")["method"] == "ar_t16"  # only the baseline: nothing else to name


def test_memory_table_hides_the_average_with_one_dataset(tmp_path):
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    raw = study_config()
    raw["experiments"] = {"main": raw["experiments"]["main"],
                          "memory": {**raw["experiments"]["memory"], "datasets": ["docs"]}}
    cfg = synthesize(tmp_path, raw)
    render_all(cfg, tmp_path, tmp_path)
    memory = (tmp_path / "paper/generated/tables/memory.tex").read_text()
    assert "across datasets" not in memory and "average (MiB)" not in memory
    assert "peak (MiB) & rel. change" in memory
    row = next(line for line in memory.splitlines() if line.startswith("tree"))
    assert row == r"tree & \num{150.5} & \num{+49.75}\,\% \\"  # docs only: 150.5 vs 100.5 MiB


def test_rendering_removes_another_studys_generated_files(tmp_path):
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    raw = study_config()
    raw["experiments"] = {"main": raw["experiments"]["main"]}
    cfg = synthesize(tmp_path, raw)
    stale = tmp_path / "paper/generated/tables/leaderboard.tex"  # as another study in this workspace left it
    stale.parent.mkdir(parents=True)
    stale.write_text("% another study's table\n")
    manifest = render_all(cfg, tmp_path, tmp_path)
    assert not stale.exists() and "paper/generated/tables/main.tex" in manifest


def test_the_sweep_figure_shows_the_tuning_set_next_to_the_reported_one(tmp_path, monkeypatch):
    """Issue 15: the tuning stage's grid (its own, disjoint prompts) is a row of the sweep figure."""
    import decodebench.render.tables as tables

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    raw = study_config()
    raw["datasets"]["docs_tune"] = {**raw["datasets"]["docs"], "label": "Docs", "skip": 2}
    raw["tune"] = {"dataset": "docs_tune", "grid": {"tree": {"depth": [2, 4], "branching": [2, 3]}}}
    raw["experiments"] = {"main": raw["experiments"]["main"], "sweep": raw["experiments"]["sweep"]}
    cfg = synthesize(tmp_path, raw)
    shown = {}
    real = tables.figure_sweep

    def capture(ctx, df, grids):
        shown["rows"] = df
        real(ctx, df, grids)

    monkeypatch.setattr(tables, "figure_sweep", capture)
    render_all(cfg, tmp_path, tmp_path)
    rows = shown["rows"]
    tuning = rows[rows["dataset"] == "docs_tune"]
    assert set(tuning["method_id"]) == {"tree"} and len(tuning) == 4  # the tuning grid, AR left out
    assert set(tuning["dataset_label"]) == {"Docs (tuning set)"}
    assert set(rows[rows["dataset"] == "docs"]["method_id"]) == {"ar", "tree", "linear"}  # the reported set
