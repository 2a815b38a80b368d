"""The spec-bench importer (FastChat model_answer JSON lines): file-name grammar, key variants,
categories, errors, and the four published sets (read from the shared checkout when present)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from decodebench import results
from decodebench.cli import main
from decodebench.config import Config
from decodebench.importers import ImportFormatError, convert, write_results
from decodebench.importers.spec_bench import Setup, parse_file_name

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared/external"


def answer(qid, category="writing", turns=("Hello", "World"), new_tokens=(3, 2), wall_time=(0.5, 0.25),
           steps_key="decoding_steps", steps=(2, 1), accept_key="accept_lengths", accept=(2, 1, 2)) -> dict:
    choice = {"index": 0, "turns": list(turns), "new_tokens": list(new_tokens), "wall_time": list(wall_time)}
    if steps_key:
        choice[steps_key] = list(steps)
    if accept_key:
        choice[accept_key] = list(accept)
    rec = {"question_id": qid, "answer_id": "x", "model_id": "m", "tstamp": 0.0, "choices": [choice]}
    if category is not None:
        rec["category"] = category
    return rec


def answer_file(tmp_path: Path, name: str, records: list[dict]) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ------------------------------------------------------------------------------------------
# File names

NAMES = {
    "vicuna-7b-v1.3-vanilla-float16-temp-0.0":
        Setup("ar", "ar", "vicuna-7b-v1.3", None, "float16", {"temperature": 0.0}),
    "vicuna-7b-v1.3-eagle-float16-temperature-0.0":
        Setup("eagle", "eagle", "vicuna-7b-v1.3", None, "float16", {"temperature": 0.0}),
    "vicuna-7b-v1.3-sps-68m-float16-temp-0.0":
        Setup("sps", "sps_68m", "vicuna-7b-v1.3", "68m", "float16", {"temperature": 0.0, "draft": "68m"}),
    "baseline-vicuna-7b-v1.5-temperature-0.0-top_p-0":
        Setup("ar", "ar", "vicuna-7b-v1.5", None, None, {"temperature": 0.0, "top_p": 0.0}),
    "rest-vicuna-7b-v1.5-temperature-0.0-top_p-0":
        Setup("rest", "rest", "vicuna-7b-v1.5", None, None, {"temperature": 0.0, "top_p": 0.0}),
    "medusa-vicuna-7b-v1.3-temperature-0.0-posterior_threshold-0.09-posterior_alpha-0.3":
        Setup("medusa", "medusa", "vicuna-7b-v1.3", None, None,
              {"temperature": 0.0, "posterior_threshold": 0.09, "posterior_alpha": 0.3}),
    "medusa-vicuna-7b-v1.3-1-temperature-0.0-posterior_threshold-0.09-posterior_alpha-0.3":
        Setup("medusa", "medusa_r1", "vicuna-7b-v1.3", None, None,
              {"temperature": 0.0, "posterior_threshold": 0.09, "posterior_alpha": 0.3, "run": 1}),
    "medusa-vicuna-7b-v1.3-2-temperature-0.0-posterior_threshold-0.09-posterior_alpha-0.3":
        Setup("medusa", "medusa_r2", "vicuna-7b-v1.3", None, None,
              {"temperature": 0.0, "posterior_threshold": 0.09, "posterior_alpha": 0.3, "run": 2}),
    "llama-2-chat-70b-fp16-base-in-temperature-0.0":
        Setup("ar", "ar", "llama-2-chat-70b", None, "float16", {"temperature": 0.0}),
    "llama-2-chat-70b-fp16-ea-in-temperature-0.0":
        Setup("eagle", "eagle", "llama-2-chat-70b", None, "float16", {"temperature": 0.0}),
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_file_name_grammar(name):
    assert parse_file_name(name) == NAMES[name]


def test_every_published_file_name_is_in_the_literal_list():
    found = {p.stem for p in EXTERNAL.glob("*/*/*.jsonl") if p.name != "question.jsonl"}
    if not found:
        pytest.skip(f"no published answer files under {EXTERNAL}")
    assert found == set(NAMES)


@pytest.mark.parametrize("name", ["vicuna-7b-v1.3-lookahead-float16-temp-0.0", "answers", "eagle-only"])
def test_unparseable_name_is_an_error_naming_the_file_unless_the_config_names_it(tmp_path, name):
    path = answer_file(tmp_path, name, [answer(1)])
    with pytest.raises(ImportFormatError, match=rf"{name}.jsonl: file name '{name}' is not in the spec-bench grammar"):
        convert("spec-bench", path, "s")
    res = convert("spec-bench", path, "s", {"methods": {path.name: ("mine", "eagle")}}).results[0]
    assert (res["method"]["name"], res["method"]["id"]) == ("mine", "eagle")
    assert "named by the config" in res["provenance"]["notes"]


# ------------------------------------------------------------------------------------------
# Records


def test_one_result_per_file_with_per_question_records(tmp_path):
    path = answer_file(tmp_path, "vicuna-7b-v1.3-eagle-float16-temperature-0.0",
                       [answer(1), answer(2, category="translation", new_tokens=(4, 4), wall_time=(1.0, 1.0),
                                          steps=(2, 2), accept=(2, 2, 2, 2))])
    (res,) = convert("spec-bench", path, "study").results
    results.validate(res, "fixture")
    assert res["kind"] == "imported" and res["records"] is None
    assert (res["experiment"], res["dataset"]["name"], res["method"]["name"]) == ("leaderboard", "spec_bench", "eagle")
    assert res["method"]["lossless"] and res["method"]["greedy"]
    assert res["environment"]["dtype"] == "float16"
    q = res["questions"][0]
    assert q == {"question_id": 1, "category": "writing", "new_tokens": [3, 2], "wall_time_s": [0.5, 0.25],
                 "steps": [2, 1], "accept_lengths": [2, 1, 2],
                 "output_sha256": [hashlib.sha256(b"Hello").hexdigest(), hashlib.sha256(b"World").hexdigest()]}
    assert "Hello" not in json.dumps(res)  # no raw text
    # per question: sum(tokens)/sum(time): 5/0.75 and 8/2; mean over questions
    assert res["summary"]["tokens_per_s"]["mean"] == pytest.approx((5 / 0.75 + 8 / 2.0) / 2)
    assert res["summary"]["tokens_per_s"]["n"] == 2
    assert res["summary"]["mean_accepted_tokens"]["mean"] == pytest.approx(13 / 7)


def test_key_variants_idxs_and_accept_lengths_with_a_colon(tmp_path):
    path = answer_file(tmp_path, "rest-vicuna-7b-v1.5-temperature-0.0-top_p-0",
                       [answer(81, steps_key="idxs", steps=(1, 0), accept_key="accept_lengths:")])
    (res,) = convert("spec-bench", path, "s").results
    assert res["questions"][0]["steps"] == [2, 1]  # idxs: 0-based index of the last step
    assert res["questions"][0]["accept_lengths"] == [2, 1, 2]
    assert res["source_summary"]["keys"] == {"steps": "idxs", "accept_lengths": "accept_lengths:"}
    assert "'accept_lengths:'" in res["provenance"]["notes"] and "idxs + 1" in res["provenance"]["notes"]
    assert res["dataset"]["name"] == "mt_bench"
    assert res["environment"]["dtype"] is None and "does not state the dtype" in res["provenance"]["notes"]
    none = answer_file(tmp_path, "medusa-vicuna-7b-v1.3-temperature-0.0",
                       [answer(81, steps_key="idxs", accept_key=None)])
    (res,) = convert("spec-bench", none, "s").results
    assert res["questions"][0]["accept_lengths"] is None and "mean_accepted_tokens" not in res["summary"]


def test_categories_from_a_question_file_and_contradictions(tmp_path):
    questions = tmp_path / "question.jsonl"
    questions.write_text(json.dumps({"question_id": 81, "category": "writing", "turns": ["a"]}) + "\n"
                         + json.dumps({"question_id": 82, "category": "math", "turns": ["b"]}) + "\n")
    path = answer_file(tmp_path, "llama-2-chat-70b-fp16-ea-in-temperature-0.0",
                       [answer(81, category=None), answer(82, category=None)])
    with pytest.raises(ImportFormatError, match="cannot tell the question set"):
        convert("spec-bench", path, "s")
    (res,) = convert("spec-bench", path, "s", {"questions": questions}).results
    assert [q["category"] for q in res["questions"]] == ["writing", "math"]
    assert res["dataset"]["name"] == "mt_bench"
    bad = answer_file(tmp_path, "llama-2-chat-70b-fp16-base-in-temperature-0.0",
                      [answer(81, category="roleplay")])
    with pytest.raises(ImportFormatError, match=r"line 1: field 'category' is 'roleplay' but the question file says 'writing'"):
        convert("spec-bench", bad, "s", {"questions": questions})
    missing = answer_file(tmp_path, "vicuna-7b-v1.3-vanilla-float16-temp-0.0", [answer(99)])
    with pytest.raises(ImportFormatError, match="question_id 99 is not in the question file"):
        convert("spec-bench", missing, "s", {"questions": questions})


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("choices"), "field 'choices' is missing"),
    (lambda r: r["choices"].append(r["choices"][0]), "expected a list of exactly one object"),
    (lambda r: r["choices"][0].update(new_tokens=[3]), r"choices\[0\].new_tokens': expected one value per turn \(2\), found 1"),
    (lambda r: r["choices"][0].update(wall_time=[0.5, "x"]), r"choices\[0\].wall_time': expected finite numbers"),
    (lambda r: r["choices"][0].pop("wall_time"), r"choices\[0\].wall_time' is missing"),
    (lambda r: r["choices"][0].update({"accept_lengths:": [1]}), "both 'accept_lengths' and 'accept_lengths:'"),
])
def test_malformed_records_name_file_line_and_field(tmp_path, mutate, message):
    bad = answer(2)
    mutate(bad)
    path = answer_file(tmp_path, "vicuna-7b-v1.3-vanilla-float16-temp-0.0", [answer(1), bad])
    with pytest.raises(ImportFormatError, match=rf"vanilla-float16-temp-0.0.jsonl line 2: .*{message}"):
        convert("spec-bench", path, "s")


def test_bad_json_and_duplicate_questions(tmp_path):
    path = tmp_path / "vicuna-7b-v1.3-vanilla-float16-temp-0.0.jsonl"
    path.write_text(json.dumps(answer(1)) + "\n\n{not json\n")
    with pytest.raises(ImportFormatError, match="temp-0.0.jsonl line 3: not valid JSON"):
        convert("spec-bench", path, "s")
    dup = answer_file(tmp_path, "vicuna-7b-v1.3-vanilla-float16-temp-0.0", [answer(1), answer(1)])
    with pytest.raises(ImportFormatError, match="question_id 1 answered more than once"):
        convert("spec-bench", dup, "s")


def test_impossible_values_are_imported_as_written(tmp_path):
    """The import refuses malformed files, not impossible measurements: check reports those."""
    path = answer_file(tmp_path, "llama-2-chat-70b-fp16-base-in-temperature-0.0",
                       [answer(81, new_tokens=(0, 0), accept_key=None, steps_key="idxs")])
    (res,) = convert("spec-bench", path, "s", {"dataset": "mt_bench"}).results
    results.validate(res, "fixture")
    assert res["questions"][0]["new_tokens"] == [0, 0]
    assert res["summary"]["tokens_per_s"]["mean"] == 0.0


def test_cli_with_questions_and_deterministic_rewrite(tmp_path, capsys):
    questions = tmp_path / "question.jsonl"
    questions.write_text(json.dumps({"question_id": 1, "category": "qa"}) + "\n")
    path = answer_file(tmp_path, "vicuna-7b-v1.3-sps-68m-float16-temp-0.0", [answer(1, category=None)])
    out = tmp_path / "raw"
    args = ["import", "--format", "spec-bench", str(path), "--questions", str(questions), "--out", str(out),
            "--study", "sb"]
    assert main(args) == 0
    assert "written: " in capsys.readouterr().out
    res = results.load_result(out / "leaderboard/spec_bench/sps_68m.json")
    assert res["study"] == "sb" and res["questions"][0]["category"] == "qa"
    assert main(args) == 0
    assert "unchanged: " in capsys.readouterr().out
    assert res["models"]["draft"]["name"] == "draft-68m"


# ------------------------------------------------------------------------------------------
# The published sets

SETS = {
    "spec-bench": ("model_answer", "spec-bench/question.jsonl", {"ar", "eagle", "sps_68m"}, 480),
    "rest": ("model_answer", "rest/question.jsonl", {"ar", "rest"}, 80),
    "medusa": ("model_answer", "rest/question.jsonl", {"medusa", "medusa_r1", "medusa_r2"}, 80),
    "eagle": ("outputs", "rest/question.jsonl", {"ar", "eagle"}, 80),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_published_sets_import_into_valid_results(tmp_path, name):
    folder, questions, methods, n = SETS[name]
    files = sorted((EXTERNAL / name / folder).glob("*.jsonl"))
    if not files or not (EXTERNAL / questions).is_file():
        pytest.skip(f"published {name} answers not found under {EXTERNAL} (third-party data, not shipped)")
    converted = []
    for f in files:
        converted += convert("spec-bench", f, name, {"questions": EXTERNAL / questions}).results
    written = write_results(converted, tmp_path)
    assert {p.stem for p, _ in written} == methods
    for r in converted:
        assert len(r["questions"]) == n and all(q["category"] for q in r["questions"])


def test_config_options_name_methods_and_a_null_baseline_only_for_imports(tmp_path):
    from decodebench.config import ConfigError, check_references
    from decodebench.importers import import_options

    cfg = Config({"import": {"format": "spec-bench", "path": "src", "questions": "q.jsonl",
                                         "methods": {"answers.jsonl": "mine"}},
           "experiments": {"leaderboard": {"methods": {"mine": {"method": "eagle"}}}}}, "c.yaml")
    options = import_options(cfg, tmp_path)
    assert options == {"questions": tmp_path / "q.jsonl", "methods": {"answers.jsonl": ("mine", "eagle")}}
    cfg["import"]["methods"] = {"answers.jsonl": "other"}
    with pytest.raises(ImportFormatError, match="c.yaml: import.methods.answers.jsonl: 'other' is not a method "
                                                "configuration of experiments.leaderboard"):
        import_options(cfg, tmp_path)
    measured = {"datasets": {"d": {}}, "experiments": {"e": {"baseline": None, "datasets": ["d"],
                                                             "methods": {"m": {"method": "ar"}}}}}
    with pytest.raises(ConfigError, match="baseline: null is allowed only in an imported study"):
        check_references(measured, "c.yaml")
    check_references({**measured, "import": {"format": "spec-bench", "path": "p"}}, "c.yaml")
