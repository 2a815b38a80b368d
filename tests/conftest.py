"""Shared fixtures: tiny random-weight models built from a config, and a tiny study config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from decodebench.testing import make_tiny_model  # noqa: E402

# Tiny models run fastest on one thread (and tests never assert timings).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{'llama': dir, 'gpt_neox': dir, 'llama_draft': dir, 'gpt_neox_draft': dir}."""
    root = tmp_path_factory.mktemp("models")
    return {
        "llama": make_tiny_model(root / "llama", "llama", seed=0),
        "gpt_neox": make_tiny_model(root / "gpt_neox", "gpt_neox", seed=0),
        "llama_draft": make_tiny_model(root / "llama_draft", "llama", seed=1, layers=1, hidden=32),
        "gpt_neox_draft": make_tiny_model(root / "gpt_neox_draft", "gpt_neox", seed=1, layers=1, hidden=32),
    }


@pytest.fixture
def tiny_config(tmp_path, tiny_models) -> Path:
    """A study config over the tiny Llama and a local JSONL dataset; returns its path."""
    docs = tmp_path / "docs.jsonl"
    text = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
            "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.\n")
    docs.write_text("".join(json.dumps({"id": f"doc{i}", "text": text * (2 + i)}) + "\n" for i in range(5)))
    cfg = {
        "study": "tiny",
        "device": "cpu",
        "dtype": "float32",
        "threads": 1,
        "seed": 0,
        "resources_dir": str(tmp_path / "resources"),
        "models": {"target": {"name": "tiny-llama", "path": str(tiny_models["llama"])},
                   "draft": {"name": "tiny-llama-draft", "path": str(tiny_models["llama_draft"])}},
        "datasets": {"docs": {"loader": "jsonl", "path": str(docs), "num_prompts": 3, "prompt_tokens": 24}},
        "protocol": {"warmups": 1, "repeats": 1, "max_new_tokens": 12, "stop_at_eos": False},
        "experiments": {"main": {"baseline": "ar", "datasets": ["docs"], "methods": {"ar": {"method": "ar"}}}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
