"""check's rules on imported per-question records (Spec-Bench answer files): values,
arithmetic, lossless (text hashes), run-agreement, no-baseline and the comparability note;
small fixtures written here, plus the findings on the published sets when present."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from decodebench.check import check_paths
from decodebench.config import load_config
from decodebench.importers import convert, import_options, source_files, write_results

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared/external"

VANILLA = "vicuna-7b-v1.3-vanilla-float16-temp-0.0"
EAGLE = "vicuna-7b-v1.3-eagle-float16-temperature-0.0"


def q(qid, tokens=(4, 2), times=(1.0, 0.5), steps=(4, 2), accept=(1, 1, 1, 1, 1, 1), texts=None):
    return {"question_id": qid, "category": "writing", "answer_id": "a", "model_id": "m", "tstamp": 0,
            "choices": [{"index": 0, "turns": list(texts or (f"answer {qid}", f"second {qid}")),
                         "new_tokens": list(tokens), "wall_time": list(times), "decoding_steps": list(steps),
                         "accept_lengths": list(accept)}]}


def fast(qid, **kw):
    """The method's answer: same text as the baseline's, half the time, two tokens per step."""
    return q(qid, times=(0.5, 0.25), steps=(2, 1), accept=(2, 2, 2), **kw)


def run_check(tmp_path: Path, files: dict[str, list[dict]], cfg: dict | None = None):
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    converted = []
    for name, recs in files.items():
        path = src / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        converted += convert("spec-bench", path, "t").results
    out = tmp_path / "results/raw/t"
    write_results(converted, out, force=True)
    report = check_paths([out], cfg=cfg, root=tmp_path)
    return report, [f for f in report.findings if f.severity != "not-applicable"]


def rules(findings, rule):
    return [f for f in findings if f.rule == rule]


def test_clean_answers_pass_every_rule(tmp_path):
    report, findings = run_check(tmp_path, {VANILLA: [q(1), q(2)], EAGLE: [fast(1), fast(2)]})
    assert findings == []
    assert report.exit_code() == 0
    notes = [f for f in report.findings if f.rule == "comparability" and "re-tokenising" in f.message]
    assert [Path(f.file).name for f in notes] == ["eagle.json"]  # the comparability note, not a pass
    for rule in ("values", "arithmetic", "lossless", "no-baseline"):
        assert report.checked[("results/raw/t/leaderboard/mt_bench/eagle.json", rule)] == "passed"


@pytest.mark.parametrize("answer, message", [
    (q(2, tokens=(0, 2), steps=(1, 2), accept=(0, 1, 1)), "new_tokens is 0 although wall_time_s is positive "
                                                          "and the turn's text is not empty"),
    (q(2, times=(0.0, 0.5)), "wall_time_s is not positive"),
    (q(2, times=(-1.0, 0.5)), "wall_time_s is not positive"),
    (q(2, steps=(5, 2), accept=(1, 1, 1, 1, 0, 1, 1)), "more decoding steps than new tokens"),
    (q(2, steps=(3, 2), accept=(2, 0, 2, 1, 1)), "an accepted length below 1"),
])
def test_values_catches_impossible_records(tmp_path, answer, message):
    _, findings = run_check(tmp_path, {VANILLA: [q(1), answer]})
    values = rules(findings, "values")
    assert any(message in f.message and "first question_id 2" in f.message for f in values), values
    assert all(f.severity == "error" and f.file.endswith("ar.json") for f in values)


def test_arithmetic_on_accepted_lengths_and_the_summary(tmp_path):
    _, findings = run_check(tmp_path, {VANILLA: [q(1), q(2, accept=(1, 1, 1, 1, 1, 0))]})
    (f,) = rules(findings, "arithmetic")
    assert "accepted lengths do not sum to new_tokens in 1 of 2 questions" in f.message
    assert "expected 6, found 5" in f.message
    _, findings = run_check(tmp_path / "b", {VANILLA: [q(1, steps=(4, 2), accept=(2, 1, 1, 1, 1))]})
    (f,) = rules(findings, "arithmetic")
    assert "not one accepted length per decoding step in 1 of 1 questions" in f.message
    assert "expected 6 entries, found 5" in f.message
    report, _ = run_check(tmp_path / "c", {VANILLA: [q(1), q(2)]})
    path = tmp_path / "c/results/raw/t/leaderboard/mt_bench/ar.json"
    data = json.loads(path.read_text())
    data["summary"]["tokens_per_s"]["mean"] = 99.0
    path.write_text(json.dumps(data))
    report = check_paths([path], root=tmp_path / "c")
    assert any(f.rule == "arithmetic" and "summary.tokens_per_s is not the mean over questions" in f.message
               for f in report.findings)


def test_lossless_compares_text_hashes_with_the_baseline(tmp_path):
    method = [fast(1), fast(2, texts=("answer 2", "different")), fast(3, texts=("x", "y"))]
    _, findings = run_check(tmp_path, {VANILLA: [q(1), q(2), q(3)], EAGLE: method})
    (f,) = rules(findings, "lossless")
    assert f.severity == "warning" and f.file.endswith("eagle.json")  # float16: a warning with the rate
    assert "3 of 6 turns identical (50.0%), 2 questions differ, first question_id 2, 3" in f.message
    fp32 = {VANILLA.replace("float16", "float32"): [q(1)], EAGLE.replace("float16", "float32"):
            [fast(1, texts=("no", "no"))]}
    _, findings = run_check(tmp_path / "fp32", fp32)
    assert [f.severity for f in rules(findings, "lossless")] == ["error"]


def test_run_agreement_flags_runs_that_disagree_beyond_noise(tmp_path):
    rng = random.Random(0)
    base = "medusa-vicuna-7b-v1.3{}-temperature-0.0"

    def run(scale, jitter):
        return [q(i, times=(1.0 * scale * (1 + rng.uniform(-jitter, jitter)), 0.5 * scale)) for i in range(1, 41)]
    files = {base.format(""): run(1.0, 0.02), base.format("-1"): run(1.0, 0.02), base.format("-2"): run(1.2, 0.02)}
    cfg = {"study": "t", "experiments": {"leaderboard": {"baseline": None, "datasets": ["mt_bench"],
                                                         "methods": {}}}}
    _, findings = run_check(tmp_path, files, cfg)
    agree = rules(findings, "run-agreement")
    assert sorted(Path(f.file).name for f in agree) == ["medusa.json", "medusa_r1.json"]
    assert all("medusa_r2.json disagrees beyond noise" in f.message and f.severity == "warning" for f in agree)
    # no baseline: each result says the table shows absolute tokens/s
    assert len(rules(findings, "no-baseline")) == 3
    # within the tolerance: nothing
    _, findings = run_check(tmp_path / "same", {base.format(""): run(1.0, 0.02), base.format("-1"): run(1.01, 0.02)},
                            cfg)
    assert rules(findings, "run-agreement") == []


def test_a_baseline_without_tokens_gives_no_speedup(tmp_path):
    zero = [q(i, tokens=(0, 0), accept=()) for i in (1, 2)]
    _, findings = run_check(tmp_path, {VANILLA: zero, EAGLE: [fast(1), fast(2)]})
    nb = rules(findings, "no-baseline")
    assert {Path(f.file).name for f in nb} == {"ar.json", "eagle.json"}
    assert all("mean of 0.0 tokens/s" in f.message for f in nb)


# ------------------------------------------------------------------------------------------
# The published sets: what docs/import.md and the README list


EXPECTED = {  # set -> sorted (file, rule, severity) of every finding but the not-applicable ones
    "spec-bench": [("eagle.json", "lossless", "acknowledged"), ("sps_68m.json", "lossless", "acknowledged")],
    "rest": [("rest.json", "arithmetic", "acknowledged"), ("rest.json", "lossless", "acknowledged"),
             ("rest.json", "values", "acknowledged")],
    "medusa": [("medusa.json", "no-baseline", "acknowledged"), ("medusa.json", "run-agreement", "acknowledged"),
               ("medusa_r1.json", "no-baseline", "acknowledged"),
               ("medusa_r1.json", "run-agreement", "acknowledged"),
               ("medusa_r2.json", "no-baseline", "acknowledged")],
    "eagle": [("ar.json", "no-baseline", "acknowledged"), ("ar.json", "values", "acknowledged"),
              ("ar.json", "values", "acknowledged"), ("eagle.json", "lossless", "acknowledged"),
              ("eagle.json", "no-baseline", "acknowledged")],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_on_the_published_sets(tmp_path, name):
    cfg = load_config(REPO / f"config/{name}.yaml")
    try:
        files = source_files(cfg, REPO)
    except Exception:
        pytest.skip(f"published {name} answers not found (third-party data, not shipped)")
    options = import_options(cfg, REPO)
    converted = [r for f in files for r in convert("spec-bench", f, name, options).results]
    out = tmp_path / f"results/raw/{name}"
    write_results(converted, out)
    report = check_paths([out], cfg=cfg, root=tmp_path)
    found = sorted((Path(f.file).name, f.rule, f.severity) for f in report.findings if f.severity != "not-applicable")
    assert found == EXPECTED[name]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == (1 if found else 0)
