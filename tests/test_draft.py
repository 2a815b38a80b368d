"""The distilled draft: deterministic build, full-vocabulary logits, caching, card, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from decodebench.cli import main
from decodebench.config import load_config
from decodebench.draft import build_draft
from decodebench.draft_model import ReducedVocabLlamaForCausalLM
from decodebench.models import CARD, ModelUnavailable, load_model

RECIPE = {"layers": 1, "vocab_size": 48, "heldout_documents": 1, "seq_len": 16, "train_sequences": 8,
          "eval_sequences": 2, "top_k": 8, "steps": 4, "batch_size": 4, "cost_steps": 2}


def distilled_config(tiny_config: Path, resources: Path, **recipe) -> Path:
    cfg = yaml.safe_load(tiny_config.read_text())
    docs = cfg["datasets"]["docs"]["path"]
    cfg["resources_dir"] = str(resources)
    cfg["models"]["draft"] = {"name": "tiny-distilled",
                              "distilled": {**RECIPE, "corpus": {"loader": "jsonl", "path": docs}, **recipe}}
    path = resources.parent / f"config-{resources.name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def card_of(cfg_path: Path) -> dict:
    cfg = load_config(cfg_path)
    return json.loads((Path(cfg["resources_dir"]) / "models" / "tiny-distilled" / CARD).read_text())


def test_build_is_deterministic_for_a_fixed_seed(tiny_config, tmp_path):
    a = distilled_config(tiny_config, tmp_path / "a")
    b = distilled_config(tiny_config, tmp_path / "b")
    c = distilled_config(tiny_config, tmp_path / "c", seed=1)
    for cfg in (a, b, c):
        build_draft(load_config(cfg), progress=False)
    assert card_of(a)["weights_sha256"] == card_of(b)["weights_sha256"]
    assert card_of(a)["weights_sha256"] != card_of(c)["weights_sha256"]


def test_reduced_vocab_draft_presents_full_vocab_logits(tiny_config, tmp_path):
    cfg = load_config(distilled_config(tiny_config, tmp_path / "r"))
    build_draft(cfg, progress=False)
    loaded = load_model(cfg["models"]["draft"], resources_dir=cfg["resources_dir"])
    draft = loaded.model
    assert isinstance(draft, ReducedVocabLlamaForCausalLM)
    vocab_ids = draft.vocab_ids
    full = draft.config.vocab_size
    assert len(vocab_ids) < full and draft.lm_head.out_features == len(vocab_ids)
    ids = torch.randint(0, full, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = draft(ids).logits  # [2, 10, full]
        reduced = draft.reduced_logits(ids)  # [2, 10, V_r]
    assert logits.shape == (2, 10, full)
    outside = torch.ones(full, dtype=torch.bool)
    outside[vocab_ids] = False
    assert (logits[..., outside] == torch.finfo(logits.dtype).min).all()
    assert torch.equal(logits[..., vocab_ids], reduced)
    assert torch.equal(logits.argmax(-1), vocab_ids[reduced.argmax(-1)])
    assert torch.isin(logits.argmax(-1), vocab_ids).all()


def test_build_draft_is_a_no_op_when_up_to_date_and_rebuilds_on_recipe_change(tiny_config, tmp_path, capsys):
    path = distilled_config(tiny_config, tmp_path / "n")
    assert main(["build-draft", "--config", str(path), "--quiet"]) == 0
    assert "(built)" in capsys.readouterr().out
    first = card_of(path)
    assert main(["build-draft", "--config", str(path), "--quiet"]) == 0
    assert "(up to date)" in capsys.readouterr().out
    assert card_of(path) == first

    changed = distilled_config(tiny_config, tmp_path / "n", steps=5)  # same resources, new recipe
    cfg = load_config(changed)
    with pytest.raises(ModelUnavailable, match="another recipe"):
        load_model(cfg["models"]["draft"], resources_dir=cfg["resources_dir"])
    assert main(["build-draft", "--config", str(changed), "--quiet"]) == 0
    assert "(built)" in capsys.readouterr().out
    second = card_of(changed)
    assert second["recipe_sha256"] != first["recipe_sha256"] and second["training"]["steps"] == 5
    assert not (tmp_path / "n" / "models" / "tiny-distilled.tmp").exists()


def test_card_records_provenance_and_load_model_reports_it(tiny_config, tmp_path):
    cfg = load_config(distilled_config(tiny_config, tmp_path / "p"))
    build_draft(cfg, progress=False)
    card = card_of(Path(cfg.path))
    for key in ("weights_sha256", "recipe_sha256", "seed", "vocab_size", "heldout_greedy_agreement",
                "heldout_vocab_coverage", "draft_step_ms", "target_step_ms", "cost_ratio", "build_wall_time_s"):
        assert key in card, key
    assert len(card["corpus"]["sha256"]) == 64 and card["corpus"]["heldout_documents"]
    assert card["training"]["steps"] == RECIPE["steps"] and card["training"]["wall_time_s"] > 0
    assert 0.0 <= card["heldout_greedy_agreement"] <= card["heldout_vocab_coverage"] <= 1.0
    assert card["target"]["name"] == "tiny-llama"

    identity = load_model(cfg["models"]["draft"], resources_dir=cfg["resources_dir"]).identity
    assert identity["name"] == "tiny-distilled" and identity["source"] == "distilled:tiny-llama"
    assert identity["weights_sha256"] == card["weights_sha256"]
    assert identity["card"]["heldout_greedy_agreement"] == card["heldout_greedy_agreement"]
    assert identity["architecture"] == "ReducedVocabLlamaForCausalLM"


def test_unbuilt_draft_is_unavailable_with_instructions(tiny_config, tmp_path):
    cfg = load_config(distilled_config(tiny_config, tmp_path / "u"))
    with pytest.raises(ModelUnavailable, match="build-draft"):
        load_model(cfg["models"]["draft"], resources_dir=cfg["resources_dir"])


def test_transformers_assisted_generation_accepts_the_draft(tiny_config, tmp_path):
    cfg = load_config(distilled_config(tiny_config, tmp_path / "g"))
    build_draft(cfg, progress=False)
    target = load_model(cfg["models"]["target"], resources_dir=cfg["resources_dir"]).model
    draft = load_model(cfg["models"]["draft"], resources_dir=cfg["resources_dir"]).model
    ids = torch.tensor([[5, 17, 42, 7, 99, 3]])
    kw = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, eos_token_id=None)
    greedy = target.generate(ids, **kw)
    assisted = target.generate(ids, assistant_model=draft, **kw)
    assert torch.equal(greedy, assisted)


def test_self_distillation_trains_on_the_targets_continuations_away_from_prompt_documents(tiny_config, tmp_path):
    from decodebench.draft import greedy_continuations
    from decodebench.prompts import select_prompts

    path = distilled_config(tiny_config, tmp_path / "g", teacher="generated", prefix_tokens=6,
                            exclude_prompt_documents=True)
    cfg = load_config(path)
    build_draft(cfg, progress=False)
    card = card_of(path)
    target = load_model(cfg["models"]["target"], "cpu", "float32", cfg["resources_dir"])
    spec = {**cfg["datasets"]["docs"], "seed": 0, "min_tokens": cfg["datasets"]["docs"]["prompt_tokens"]}
    prompt_docs = {p["source"] for p in select_prompts(spec, target.tokenizer)}
    assert card["excluded_prompt_documents"] == sorted(prompt_docs) and len(prompt_docs) == 3
    assert card["corpus"]["train_documents"] + len(card["corpus"]["heldout_documents"]) == 5 - 3
    assert not prompt_docs & set(card["corpus"]["heldout_documents"])
    assert "greedy continuations" in card["heldout_agreement_definition"]

    # the continuations are the target's greedy decoding, token by token
    prefix = torch.tensor([[5, 9, 13, 2, 7, 11]])
    batched = greedy_continuations(target.model, prefix.repeat(3, 1), 12, batch_size=2, progress=False)
    ids = prefix
    with torch.inference_mode():
        while ids.shape[1] < 12:
            ids = torch.cat([ids, target.model(ids).logits[:, -1:].float().argmax(-1)], 1)
    assert (batched == ids).all()

    # the documents left out are part of the draft's identity: another prompt set rebuilds it
    raw = yaml.safe_load(path.read_text())
    raw["datasets"]["docs"]["num_prompts"] = 2
    path.write_text(yaml.safe_dump(raw))
    _, built = build_draft(load_config(path), progress=False)
    assert built and len(card_of(path)["excluded_prompt_documents"]) == 2


def test_the_teacher_cache_loads_tensors_only(tmp_path, monkeypatch):
    """torch.load with weights_only=True: a cache file that would run code when unpickled is
    refused, whatever the installed torch's default (issue 20, item 9). The environment
    variable gives this torch the old default (weights_only=False) wherever a call does not
    say it."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import pickle

    import torch

    from decodebench.draft import _cached
    from decodebench.methods.linear import LinearParams

    path = tmp_path / "train.pt"
    value = (torch.arange(6).reshape(2, 3), torch.ones(2))
    assert _cached(path, lambda: value)[0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert [t.tolist() for t in _cached(path, lambda: 1 / 0)] == [t.tolist() for t in value]  # from the cache
    torch.save(LinearParams(k=3), path)  # an arbitrary object, not tensors
    with pytest.raises(pickle.UnpicklingError):
        _cached(path, lambda: value)


def test_later_recipe_keys_at_their_defaults_leave_the_hash_alone():
    """A draft built before teacher / prefix_tokens / exclude_prompt_documents / threads existed
    stays valid: at their defaults they change nothing, so they are not part of the hash."""
    import dataclasses

    from decodebench.config import canonical_hash
    from decodebench.draft import Recipe, recipe_sha256

    target = {"weights_sha256": "ab" * 32}
    old_fields = {k: v for k, v in dataclasses.asdict(Recipe(seed=0)).items()
                  if k not in ("teacher", "prefix_tokens", "exclude_prompt_documents", "threads")}
    before = canonical_hash({"recipe": old_fields, "target": target["weights_sha256"]})
    assert recipe_sha256(Recipe(seed=0), target) == before
    assert recipe_sha256(Recipe(seed=0, prefix_tokens=16), target) == before  # unused by the corpus teacher
    assert recipe_sha256(Recipe(seed=0, teacher="generated"), target) != before
    assert recipe_sha256(Recipe(seed=0, exclude_prompt_documents=True), target, frozenset({"a"})) != before
    assert recipe_sha256(Recipe(seed=0, threads=2), target) != before


def test_recipe_threads_train_with_them_and_time_the_cost_at_the_studys(tiny_config, tmp_path, monkeypatch):
    """`threads` in the recipe: labelling and training run with that many torch threads, the
    cost ratio with the study's (what the benchmarks use), and the recipe hash changes."""
    import decodebench.draft as D

    seen = {}
    step_cost = D.step_cost
    monkeypatch.setattr(D, "step_cost", lambda *a, **k: (seen.__setitem__("cost", torch.get_num_threads()),
                                                         step_cost(*a, **k))[1])
    before = torch.get_num_threads()
    try:
        plain = load_config(distilled_config(tiny_config, tmp_path / "one"))
        build_draft(plain, progress=False)
        torch.set_num_threads(1)
        study = torch.get_num_threads()
        cfg = load_config(distilled_config(tiny_config, tmp_path / "two", threads=2))
        build_draft(cfg, progress=False)
        assert torch.get_num_threads() == study  # restored
    finally:
        torch.set_num_threads(before)
    card = card_of(Path(cfg.path))
    assert card["training"]["threads"] == 2 and seen["cost"] == 1
    assert card["recipe_sha256"] != card_of(Path(plain.path))["recipe_sha256"]
