import json
import os
import subprocess
import sys

import pytest
import yaml

from decodebench.config import ConfigError, load_config
from decodebench.harness import run_job
from decodebench.models import ModelUnavailable, load_model
from decodebench.prompts import DatasetUnavailable, read_prompt_set, select_prompts
from decodebench.results import load_result
from decodebench.testing import make_tokenizer


def test_run_writes_valid_result_with_provenance(tiny_config, tmp_path):
    cfg = load_config(tiny_config)
    out = tmp_path / "out" / "ar.json"
    run_job(cfg, "main", "docs", "ar", out, progress=False)
    data = load_result(out)
    assert data["protocol"]["prompts_measured"] == 3
    assert data["protocol"]["overrides"] == {}
    for r in data["records"]:
        assert r["new_tokens"] == 12 and r["prompt_tokens"] == 24
        assert r["peak_memory_overhead_mb"] > 0
        assert r["tokens_per_s"] == pytest.approx(r["new_tokens"] / r["wall_time_s"])
        assert 0 < r["ttft_s"] <= r["wall_time_s"]
    assert data["models"]["target"]["num_parameters"] > 0
    assert len(data["models"]["target"]["weights_sha256"]) == 64
    assert data["environment"]["torch"] and data["environment"]["transformers"]
    assert data["provenance"]["job_sha256"] and data["provenance"]["code_version"]
    assert data["dataset"]["source_kind"] == "local"


def test_cli_overrides_are_recorded(tiny_config, tmp_path):
    out = tmp_path / "ar.json"
    proc = subprocess.run([sys.executable, "-m", "decodebench.cli", "run", "--config", str(tiny_config),
                           "--experiment", "main", "--dataset", "docs", "--method", "ar", "--out", str(out),
                           "--limit", "2", "--max-new-tokens", "5", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["protocol"]["overrides"] == {"limit": 2, "max_new_tokens": 5}
    assert [r["new_tokens"] for r in data["records"]] == [5, 5]


def test_config_typo_names_the_key(tiny_config):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["protocol"]["max_new_tokns"] = 3
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(tiny_config)
    assert "max_new_tokns" in str(err.value) and str(tiny_config) in str(err.value)


def test_unknown_method_param_is_an_error(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["experiments"]["main"]["methods"]["ar"]["params"] = {"k": 3}
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="unknown parameter"):
        run_job(load_config(tiny_config), "main", "docs", "ar", tmp_path / "x.json", progress=False)


def test_prompt_selection_is_deterministic_and_truncated_in_tokens(tiny_models):
    tok = make_tokenizer()
    spec = {"loader": "gutenberg", "num_prompts": 3, "prompt_tokens": 40, "seed": 7}
    a, b = select_prompts(spec, tok), select_prompts(spec, tok)
    assert a == b
    assert all(len(p["input_ids"]) == 40 for p in a)
    assert select_prompts({**spec, "seed": 8}, tok) != a


def test_prompt_file_edit_is_detected(tiny_config, tmp_path):
    cfg = load_config(tiny_config)
    run_job(cfg, "main", "docs", "ar", tmp_path / "ar.json", limit=1, max_new_tokens=2, progress=False)
    path = tmp_path / "resources" / "prompts" / "tiny" / "docs.jsonl"
    read_prompt_set(path)
    path.write_text(path.read_text().replace("[", "[1, ", 1))
    with pytest.raises(DatasetUnavailable, match="SHA-256"):
        read_prompt_set(path)


def test_hub_dataset_unavailable_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", "/nonexistent-decodebench-cache")
    with pytest.raises(DatasetUnavailable) as err:
        select_prompts({"loader": "wikitext", "num_prompts": 1, "prompt_tokens": 8}, make_tokenizer())
    assert "wikitext" in str(err.value) and "no other text is substituted" in str(err.value)


def test_hub_model_unavailable_offline_names_model(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable) as err:
        load_model({"name": "pythia", "hf": "EleutherAI/pythia-70m-nonexistent"})
    assert "EleutherAI/pythia-70m-nonexistent" in str(err.value) and "hf download" in str(err.value)
