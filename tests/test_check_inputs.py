"""`check` on real results made by harness.run_job (tiny config): a clean run passes; staleness
and dataset provenance are judged against the current config, prompt file, weights and code."""

import json
import shutil

import pytest
import yaml

from decodebench.check import check_paths, inputs
from decodebench.config import load_config
from decodebench.harness import run_job
from decodebench.prompts import select_prompts, write_prompt_set
from decodebench.testing import make_tokenizer

RESULT = "results/raw/tiny/main/docs/ar.json"
# Timing noise of a tiny model on a shared machine says nothing about the checker: the
# baseline-stability rule is exercised on synthetic results (test_check.py).
NO_CV_LIMIT = 1e9


@pytest.fixture
def measured(tiny_config, tmp_path, monkeypatch):
    """(cfg, root) with one AR result of the tiny config under root/results/raw/tiny/."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(tiny_config)
    run_job(cfg, "main", "docs", "ar", tmp_path / RESULT, progress=False)
    return cfg, tmp_path


def check(cfg, root, **kw):
    return check_paths([root / "results" / "raw" / "tiny"], cfg=cfg, root=root, cv_threshold=NO_CV_LIMIT, **kw)


def fired(report):
    return {(f.file.split(":")[0], f.rule, f.severity) for f in report.findings if f.severity != "not-applicable"}


def errors(report):
    return {k for k in fired(report) if k[2] == "error"}


def test_clean_run_passes_with_no_errors(measured):
    cfg, root = measured
    report = check(cfg, root)
    assert errors(report) == set(), report.text()
    # A dirty working tree (the helper's own checkout) may warn, and so may a busy machine (the
    # suite runs beside other work; the contention rule's own tests plant it); nothing else may.
    # NO_CV_LIMIT relaxes baseline-stability, which a measured study's report says (on the config).
    assert fired(report) <= {(RESULT, "provenance", "warning"), (RESULT, "contention", "warning"),
                             (cfg.path, "baseline-stability", "warning")}, report.text()
    assert report.checked[(RESULT, "memory-model")] == "passed", report.text()
    # Everything that could be compared was: job, prompt file, weights, prompts re-made by the loader.
    assert report.checked[(RESULT, "staleness")] in ("passed", "warning")
    assert report.checked[(RESULT, "dataset-provenance")] == "passed"
    assert not [f for f in report.findings if f.severity == "not-applicable" and f.rule != "lossless"], report.text()


def test_config_change_names_the_field(measured):
    cfg, root = measured
    cfg["protocol"]["max_new_tokens"] = 10
    report = check(cfg, root)
    assert errors(report) == {(RESULT, "staleness", "error")}, report.text()
    (f,) = [f for f in report.findings if f.rule == "staleness" and f.severity == "error"]
    assert "protocol.max_new_tokens: recorded 12, current 10" in f.message


def test_edited_job_hash_is_stale(measured):
    cfg, root = measured
    path = root / RESULT
    data = json.loads(path.read_text())
    data["provenance"]["job_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    report = check(cfg, root)
    assert errors(report) == {(RESULT, "staleness", "error")}, report.text()


def test_result_without_job_identity_still_detects_the_change(measured):
    cfg, root = measured
    path = root / RESULT
    data = json.loads(path.read_text())
    data["provenance"]["job"] = None  # results written before provenance.job existed
    path.write_text(json.dumps(data))
    cfg["seed"] = 3
    report = check(cfg, root)
    assert errors(report) == {(RESULT, "staleness", "error")}, report.text()
    assert any("records no provenance.job" in f.message for f in report.findings)


def test_prompt_file_remade_is_stale(measured):
    cfg, root = measured
    data = json.loads((root / RESULT).read_text())
    spec = {**data["provenance"]["job"]["dataset_spec"], "seed": 99}
    write_prompt_set(data["dataset"]["prompt_file"], select_prompts(spec, make_tokenizer()), spec, "tiny")
    report = check(cfg, root)
    assert errors(report) == {(RESULT, "staleness", "error")}, report.text()
    assert any("dataset.prompt_sha256 changed" in f.message for f in report.findings)


def test_changed_weights_are_stale(tiny_config, tiny_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    shutil.copytree(tiny_models["llama"], model)
    raw = yaml.safe_load(tiny_config.read_text())
    raw["models"]["target"]["path"] = str(model)
    tiny_config.write_text(yaml.safe_dump(raw))
    cfg = load_config(tiny_config)
    run_job(cfg, "main", "docs", "ar", tmp_path / RESULT, limit=1, max_new_tokens=2, progress=False)
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    report = check(cfg, tmp_path)
    stale = [f.message for f in report.findings if f.rule == "staleness" and f.severity == "error"]
    assert any(m.startswith("models.target.weights_sha256 changed") for m in stale), report.text()
    assert any("command-line overrides" in m for m in stale)  # limit / max_new_tokens were overridden


def test_code_change_is_a_warning(measured, monkeypatch):
    cfg, root = measured
    monkeypatch.setattr(inputs, "_current_code_version", lambda: "f" * 64)
    report = check(cfg, root)
    assert (RESULT, "staleness", "warning") in fired(report) and not errors(report), report.text()


def test_dataset_labelled_wikitext_with_prompts_from_another_loader(measured):
    cfg, root = measured
    path = root / RESULT
    data = json.loads(path.read_text())
    data["dataset"].update(loader="wikitext", source_kind="hub", label="WikiText-2")
    path.write_text(json.dumps(data))
    report = check(cfg, root)
    assert errors(report) == {(RESULT, "dataset-provenance", "error")}, report.text()
    msgs = [f.message for f in report.findings if f.rule == "dataset-provenance"]
    assert any("prompt ids from another loader" in m for m in msgs)
    assert any("dataset.loader disagrees with" in m and "'jsonl'" in m for m in msgs)


def test_prompt_hash_not_what_the_loader_makes(measured):
    """The recorded prompt hash comes from another prompt set (and the prompt file agrees with
    the result): re-making the prompts with the named loader exposes it."""
    cfg, root = measured
    path = root / RESULT
    data = json.loads(path.read_text())
    spec = {**data["provenance"]["job"]["dataset_spec"], "seed": 5}
    other = write_prompt_set(root / "other.jsonl", select_prompts(spec, make_tokenizer()), spec, "tiny")
    write_prompt_set(data["dataset"]["prompt_file"], select_prompts(spec, make_tokenizer()),
                     data["provenance"]["job"]["dataset_spec"], "tiny")
    data["dataset"]["prompt_sha256"] = other["sha256"]
    path.write_text(json.dumps(data))
    report = check(cfg, root)
    # the records' prompts are not that file's either (identity)
    assert errors(report) == {(RESULT, "dataset-provenance", "error"), (RESULT, "identity", "error")}, report.text()
    assert any("is not what loader 'jsonl' makes" in f.message for f in report.findings)



def test_cli_defaults_to_the_study_results(measured, tiny_config):
    import subprocess
    import sys

    _, root = measured
    proc = subprocess.run([sys.executable, "-m", "decodebench.cli", "check", "--config", str(tiny_config),
                           "--cv-threshold", str(NO_CV_LIMIT)], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "decodebench check: 2 files, 15 rule checks" in proc.stdout, proc.stdout  # the result and the config
    assert f"{tiny_config}: baseline-stability: warning: check.cv_threshold is 1e+09" in proc.stdout, proc.stdout
    raw = yaml.safe_load(tiny_config.read_text())
    raw["protocol"]["max_new_tokens"] = 10
    tiny_config.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "decodebench.cli", "check", "--config", str(tiny_config),
                           "--cv-threshold", str(NO_CV_LIMIT)], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 1 and f"{RESULT}: staleness: error: the job changed" in proc.stdout


# --- gate: the report is signed over the config and its inputs; --verify-report checks it -----

def _cli(*args):
    import contextlib
    import io

    from decodebench.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", *map(str, args)])
    return code, out.getvalue()


def test_gate_refuses_a_hand_written_edited_or_outdated_report(measured, tiny_config):
    cfg, root = measured
    report_path = root / "results" / "tables" / "tiny" / "check_paper.txt"
    report_path.parent.mkdir(parents=True)
    code, text = _cli("--config", tiny_config, "--cv-threshold", NO_CV_LIMIT)
    assert code == 0, text
    report_path.write_text(text)
    assert _cli("--verify-report", report_path, "--config", tiny_config) == (
        0, f"{report_path}: gate: passed (signed by a passing check of this config and these inputs)\n")

    # hand-written: what a passing report says, without the signature
    report_path.write_text("decodebench check: 1 files, 13 rule checks: 13 passed, 0 with errors, 0 acknowledged, "
                           "0 with warnings, 0 not applicable; 0 errors, 0 acknowledged, 0 warnings, 0 not applicable\n")
    code, out = _cli("--verify-report", report_path, "--config", tiny_config)
    assert code == 1 and out.startswith(f"{report_path}: gate: error: no signature"), out

    # a real report whose findings were edited away keeps a signature that no longer matches
    report_path.write_text(text.replace("baseline-stability: warning", "baseline-stability: passed"))
    code, out = _cli("--verify-report", report_path, "--config", tiny_config)
    assert code == 1 and "gate: error: the signature does not match" in out, out

    # an input changed after the check (a result re-measured, edited or deleted)
    report_path.write_text(text)
    result = root / RESULT
    original = result.read_text()
    result.write_text(original.replace('"seed": 0', '"seed": 0 '))
    code, out = _cli("--verify-report", report_path, "--config", tiny_config)
    assert code == 1 and "an input changed" in out, out
    result.write_text(original)

    # the config changed after the check: the report is for another config
    raw = yaml.safe_load(tiny_config.read_text())
    raw["protocol"]["max_new_tokens"] = 10
    tiny_config.write_text(yaml.safe_dump(raw))
    code, out = _cli("--verify-report", report_path, "--config", tiny_config)
    assert code == 1 and f"{report_path}: gate: error: made for another config" in out, out


def test_gate_refuses_a_signed_report_of_a_failing_check(measured, tiny_config):
    cfg, root = measured
    raw = yaml.safe_load(tiny_config.read_text())
    raw["protocol"]["max_new_tokens"] = 10  # the result is now stale: the check fails
    tiny_config.write_text(yaml.safe_dump(raw))
    code, text = _cli("--config", tiny_config, "--cv-threshold", NO_CV_LIMIT)
    assert code == 1 and "staleness: error" in text
    (root / "check.txt").write_text(text)
    code, out = _cli("--verify-report", root / "check.txt", "--config", tiny_config)
    assert code == 1 and "gate: error: the check did not pass (expected 0 errors, found 1)" in out, out


def test_every_speculative_method_measured_for_real_satisfies_the_relations(tiny_config, tmp_path, monkeypatch):
    """The relations rule written from the schema's definitions holds on what the methods
    actually record (no false alarm): per-round lists, phase times, forwards."""
    from decodebench.harness import run_group

    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load(tiny_config.read_text())
    methods = {"ar": {"method": "ar"}, "linear": {"method": "linear", "params": {"k": 3}},
               "tree": {"method": "tree", "params": {"depth": 3, "branching": 2}}, "dynatree": {"method": "dynatree"},
               "hf_assisted": {"method": "hf_assisted"}, "pld": {"method": "pld"}}
    raw["experiments"]["main"]["methods"] = methods
    tiny_config.write_text(yaml.safe_dump(raw))
    cfg = load_config(tiny_config)
    outs = {m: tmp_path / f"results/raw/tiny/main/docs/{m}.json" for m in methods}
    run_group(cfg, "main", "docs", list(methods), outs, progress=False)
    report = check(cfg, tmp_path)
    for m in methods:
        rel = f"results/raw/tiny/main/docs/{m}.json"
        assert report.checked[(rel, "relations")] == "passed", report.text()
    speculative = json.loads(outs["tree"].read_text())["records"][0]
    assert speculative["accepted_per_round"] and speculative["draft_time_per_round_s"]  # the rule had data
