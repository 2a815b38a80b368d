"""`decodebench export --format spec-bench`: our results as FastChat model_answer lines, and the
round trip (export, then import, gives the same leaderboard and the same output identities)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml
from test_leaderboard import study

from decodebench import analysis, results
from decodebench.check import check_paths
from decodebench.cli import main
from decodebench.config import load_config
from decodebench.export import ExportError, answer_lines, export
from decodebench.importers import convert, write_results

LEADERBOARD_COLUMNS = ["method", "speedup", "mean_accepted_tokens"] + [
    f"task_{t}_{s}" for t in ("multi_turn", "translation", "overall") for s in ("speedup", "tokens_per_s", "n")]


def reimport(answer_dir: Path, out: Path, study: str, dataset: str) -> list[Path]:
    """Every answer file under <answer_dir>/<experiment>/<dataset>/, as `decodebench import` would."""
    converted = []
    for path in sorted(answer_dir.rglob("*.jsonl")):
        options = {"dataset": dataset, "experiment": path.parent.parent.name}
        converted += convert("spec-bench", path, study, options).results
    return [p for p, _ in write_results(converted, out)]


def test_round_trip_of_imported_answers_gives_the_same_leaderboard(tmp_path):
    cfg, before = study(tmp_path / "a")  # the hand-computed leaderboard example, imported
    raw = tmp_path / "a/results/raw/lb"

    written = export([raw], tmp_path / "answers")
    assert {p.name for p, status in written if status == "written"} == {
        "vicuna-7b-v1.3-float16-decodebench-ar-ar-temperature-0.0.jsonl",
        "vicuna-7b-v1.3-float16-decodebench-eagle-eagle-temperature-0.0.jsonl"}
    files = reimport(tmp_path / "answers", tmp_path / "b/results/raw/lb", "lb", "spec_bench")
    after = analysis.wide_table(analysis.aggregate_files(cfg, "leaderboard", sorted(files)))
    cols = [c for c in LEADERBOARD_COLUMNS if c in before.columns]
    assert before[cols].sort_values("method").reset_index(drop=True).equals(
        after[cols].sort_values("method").reset_index(drop=True))
    for name in ("ar", "eagle"):
        a = results.load_result(raw / f"leaderboard/spec_bench/{name}.json")
        b = results.load_result(tmp_path / f"b/results/raw/lb/leaderboard/spec_bench/{name}.json")
        for qa, qb in zip(a["questions"], b["questions"]):
            assert qa == qb  # tokens, times, steps, accepted lengths, categories and text identities
        assert (b["method"]["id"], b["method"]["lossless"]) == (name, True)

    # exporting again is idempotent; another content is refused unless forced
    assert {s for _, s in export([raw], tmp_path / "answers")} == {"unchanged"}
    target = next(p for p, _ in written)
    target.write_text("{}\n")
    with pytest.raises(ExportError, match="exists with different content"):
        export([raw], tmp_path / "answers")
    assert target.read_text() == "{}\n"  # nothing overwritten
    assert {s for _, s in export([raw], tmp_path / "answers", force=True)} == {"replaced", "unchanged"}


@pytest.fixture
def measured(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"].update(repeats=2, max_new_tokens=6)
    cfg["experiments"]["main"]["methods"] = {"ar": {"method": "ar"}, "linear": {"method": "linear"}}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    from decodebench.harness import run_group

    outs = {m: tmp_path / "results/raw/tiny/main/docs" / f"{m}.json" for m in ("ar", "linear")}
    run_group(load_config(tiny_config), "main", "docs", ["ar", "linear"], outs, limit=2, progress=False)
    return {m: results.load_result(p) for m, p in outs.items()}, tmp_path / "results/raw/tiny"


def test_measured_results_export_one_answer_per_prompt_of_the_chosen_repeat(measured, tiny_models, tmp_path):
    res, raw = measured
    lines = answer_lines(res["linear"], "linear.json", repeat=1)
    chosen = [r for r in res["linear"]["records"] if r["repeat"] == 1]
    assert [ln["question_id"] for ln in lines] == [r["prompt_id"] for r in chosen]
    for ln, r in zip(lines, chosen):
        c = ln["choices"][0]
        assert ln["category"] == "docs" and ln["model_id"] == "tiny-llama"
        assert c["new_tokens"] == [r["new_tokens"]] and c["wall_time"] == [r["wall_time_s"]]
        assert c["accept_lengths"] == r["commit_tokens"] and sum(c["accept_lengths"]) == r["new_tokens"]
        assert c["decoding_steps"] == [len(r["commit_tokens"])]
        assert c["output_sha256"] == [r["output_sha256"]] and c["turns"] == [""]
    with pytest.raises(ExportError, match=r"linear.json: records: no record of repeat 5 \(repeats: \[0, 1\]\)"):
        answer_lines(res["linear"], "linear.json", repeat=5)

    # with the tokenizer: the decoded text; through the CLI
    assert main(["export", "--format", "spec-bench", str(raw), "--out", str(tmp_path / "answers"),
                 "--tokenizer", str(tiny_models["llama"]), "--quiet"]) == 0
    (ar_file,) = (tmp_path / "answers/main/docs").glob("*-decodebench-ar-ar-*.jsonl")
    assert ar_file.name == "tiny-llama-float32-decodebench-ar-ar-temperature-0.0.jsonl"
    first = json.loads(ar_file.read_text().splitlines()[0])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_models["llama"]))
    assert first["choices"][0]["turns"] == [tok.decode(res["ar"]["records"][0]["output_ids"], skip_special_tokens=True)]


def test_measured_round_trip_leaderboard_and_lossless_on_reimport(measured, tmp_path):
    res, raw = measured
    export([raw], tmp_path / "answers")
    out = tmp_path / "re/results/raw/tiny-lb"
    files = reimport(tmp_path / "answers", out, "tiny-lb", "docs")
    back = {results.load_result(f)["method"]["name"]: results.load_result(f) for f in files}
    assert set(back) == {"ar", "linear"} and back["linear"]["method"]["lossless"]

    # Spec-Bench's overall speedup, by hand from the repeat-0 records
    def rate(name):
        return statistics.fmean(r["new_tokens"] / r["wall_time_s"] for r in res[name]["records"] if r["repeat"] == 0)
    cfg = {"study": "tiny-lb", "datasets": {"docs": {"label": "docs"}},
           "experiments": {"main": {"baseline": "ar", "datasets": ["docs"],
                                    "methods": {"ar": {"method": "ar"}, "linear": {"method": "linear"}}}}}
    table = analysis.wide_table(analysis.aggregate_files(cfg, "main", sorted(files)))
    linear = table[table["method"] == "linear"].iloc[0]
    assert linear["task_overall_speedup"] == pytest.approx(rate("linear") / rate("ar"))
    commits = [c for r in res["linear"]["records"] if r["repeat"] == 0 for c in r["commit_tokens"]]
    assert linear["mean_accepted_tokens"] == pytest.approx(statistics.fmean(commits))

    # the output identities survive: linear reproduces AR, so the imported lossless rule passes ...
    def lossless(root):
        report = check_paths([root], cfg=None, root=root.parents[2], artifacts=False, rerender=False,
                             regenerate_prompts=False)
        return ({k[0]: v for k, v in report.checked.items() if k[1] == "lossless"},
                [f for f in report.findings if f.rule == "lossless"])
    status, _ = lossless(out)
    assert [v for k, v in status.items() if k.endswith("linear.json")] == ["passed"]
    # ... and an output that differs is found through the exported identity
    (lin,) = (tmp_path / "answers/main/docs").glob("*-decodebench-linear-*.jsonl")
    lines = [json.loads(x) for x in lin.read_text().splitlines()]
    lines[1]["choices"][0]["output_sha256"] = ["0" * 64]
    lin.write_text("".join(json.dumps(x) + "\n" for x in lines))
    status, findings = lossless(Path(reimport(tmp_path / "answers", tmp_path / "re2/results/raw/t", "t", "docs")[0]).parents[2])
    assert [f.severity for f in findings if f.file.endswith("linear.json")] == ["error"]  # float32: an error
    assert "1 of 2 turns identical" in findings[0].message


def test_what_cannot_be_exported_is_an_error_naming_the_file(measured, tmp_path):
    res, raw = measured
    summary_only = dict(res["ar"], records=None)
    with pytest.raises(ExportError, match="x.json: has neither per-prompt 'records'"):
        answer_lines(summary_only, "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ExportError, match="bad.json: cannot read a result"):
        export([bad], tmp_path / "answers")
    assert not (tmp_path / "answers").exists()  # refused before any write
    assert main(["export", "--format", "spec-bench", str(bad), "--out", str(tmp_path / "answers")]) == 1  # a failure
