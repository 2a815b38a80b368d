"""The tuning stage (config `tune:`, decodebench.tuning): a prompt set disjoint by document, the
pick recomputed by hand, tuned configurations measured with the pick and its provenance, and the
check rule `tuning` on planted flaws."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from decodebench import layout
from decodebench.check import check_paths
from decodebench.cli import main
from decodebench.config import ConfigError, load_config
from decodebench.harness import run_group
from decodebench.paired import paired_speedup
from decodebench.prompts import select_prompts
from decodebench.results import load_result
from decodebench.testing import make_tokenizer
from decodebench.tuning import prompt_document


def tuned_config(tiny_config: Path, tune_dataset: dict | None = None, **main_linear) -> Path:
    cfg = yaml.safe_load(tiny_config.read_text())
    docs = cfg["datasets"]["docs"]
    docs["num_prompts"] = 2
    cfg["datasets"]["docs_tune"] = tune_dataset or {**docs, "skip": 2}
    cfg["protocol"].update(max_new_tokens=6, repeats=2)
    cfg["tune"] = {"dataset": "docs_tune", "grid": {"linear": {"k": [1, 3]}}}
    cfg["experiments"]["main"]["methods"] = {"ar": {"method": "ar"},
                                             "linear": main_linear or {"method": "linear", "tuned": True}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tiny_config


def measure(cfg: dict, experiment: str, dataset: str) -> None:
    methods = list(cfg["experiments"][experiment]["methods"])
    outs = {m: layout.result_path(cfg["study"], experiment, dataset, m) for m in methods}
    run_group(cfg, experiment, dataset, methods, outs, progress=False)


def test_skip_gives_a_set_disjoint_by_document(tmp_path):
    tok = make_tokenizer()
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i} " * 40}) + "\n" for i in range(6)))
    spec = {"loader": "jsonl", "path": str(docs), "num_prompts": 2, "prompt_tokens": 8, "seed": 3}
    first = select_prompts(spec, tok)
    later = select_prompts({**spec, "skip": 2}, tok)
    four = select_prompts({**spec, "num_prompts": 4}, tok)
    assert not {p["source"] for p in first} & {p["source"] for p in later}
    assert [p["id"] for p in four] == [p["id"] for p in first + later]  # the same draws, continued


def test_config_validation_of_tuned_configurations(tiny_config):
    path = tuned_config(tiny_config, method="linear", tuned=True, params={"k": 2})
    with pytest.raises(ConfigError, match="'tuned: true' takes its params from the tuning stage"):
        load_config(path)
    cfg = yaml.safe_load(path.read_text())
    cfg["experiments"]["main"]["methods"]["tree"] = {"method": "tree", "tuned": True}
    del cfg["experiments"]["main"]["methods"]["linear"]["params"]
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="tuned, but the config's tune.grid has no 'tree'"):
        load_config(path)
    cfg["tune"]["dataset"] = "docs"
    del cfg["experiments"]["main"]["methods"]["tree"]
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="tune.dataset: 'docs' is also reported"):
        load_config(path)


def test_tuning_stage_end_to_end_and_the_check_rule(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(tuned_config(tiny_config))
    assert list(cfg["experiments"]["tune"]["methods"]) == ["ar", "linear_k1", "linear_k3"]
    with pytest.raises(ConfigError, match="no tuning picks; run the tuning stage first"):
        measure(cfg, "main", "docs")

    measure(cfg, "tune", "docs_tune")
    assert main(["tune", "--config", str(tiny_config)]) == 0
    assert "linear: pick linear_k" in capsys.readouterr().out
    picks = json.loads(Path(layout.tuned_path("tiny")).read_text())
    tune = {m: load_result(layout.result_path("tiny", "tune", "docs_tune", m)) for m in ("ar", "linear_k1", "linear_k3")}
    by_hand = {m: paired_speedup(tune[m]["records"], tune["ar"]["records"]).estimate for m in ("linear_k1", "linear_k3")}
    best = max(by_hand, key=by_hand.get)
    assert picks["families"]["linear"]["pick"] == best
    assert picks["families"]["linear"]["params"] == tune[best]["method"]["params"]
    assert [c["speedup"] for c in picks["families"]["linear"]["candidates"]] == pytest.approx(list(by_hand.values()))

    measure(cfg, "main", "docs")
    res = load_result(layout.result_path("tiny", "main", "docs", "linear"))
    assert res["method"]["params"] == tune[best]["method"]["params"]
    tuning = res["provenance"]["job"]["tuning"]
    assert tuning["pick"] == best and tuning["method"] == "linear" and len(tuning["picks_sha256"]) == 64
    assert "tuning" not in load_result(layout.result_path("tiny", "main", "docs", "ar"))["provenance"]["job"]
    reported = {prompt_document(r["prompt_id"]) for r in res["records"]}
    assert reported.isdisjoint(picks["documents"]) and len(picks["documents"]) == 2

    def findings():
        report = check_paths([Path("results/raw/tiny")], cfg=cfg, root=Path("."), regenerate_prompts=False)
        return report, [f for f in report.findings if f.rule in ("tuning", "staleness")
                        and f.severity == "error"]
    report, errors = findings()
    assert errors == [] and report.checked[("results/raw/tiny/main/docs/linear.json", "tuning")] == "passed"

    # planted: the picks file names the other candidate (a pick that is not the best)
    other = next(m for m in by_hand if m != best)
    forged = json.loads(json.dumps(picks))
    forged["families"]["linear"].update(pick=other, params=tune[other]["method"]["params"])
    Path(layout.tuned_path("tiny")).write_text(json.dumps(forged))
    _, errors = findings()
    messages = " | ".join(f.message for f in errors if f.file.endswith("main/docs/linear.json"))
    assert f"is {other}, but the tuning results give {best}" in messages
    assert "changed since (re-tuned)" in messages and "are not the pick" in messages
    assert any(f.rule == "staleness" for f in errors)  # the job's tuning record changed too


def test_check_finds_tuning_prompts_that_share_documents(tiny_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = yaml.safe_load(tiny_config.read_text())["datasets"]["docs"]
    cfg = load_config(tuned_config(tiny_config, tune_dataset={**docs, "num_prompts": 2}))  # no skip
    measure(cfg, "tune", "docs_tune")
    assert main(["tune", "--config", str(tiny_config)]) == 0
    measure(cfg, "main", "docs")
    report = check_paths([Path("results/raw/tiny/main")], cfg=cfg, root=Path("."), regenerate_prompts=False)
    (f,) = [f for f in report.findings if f.rule == "tuning"]
    assert f.severity == "error" and f.file.endswith("main/docs/linear.json")
    assert "tuned on prompts from the documents it reports: jsonl:doc" in f.message and "(2 shared)" in f.message
