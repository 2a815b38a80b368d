"""check's tie-aware lossless rule on real generations of a tiny model: a mismatch at a
constructed exact tie of AR's logits is a warning; a planted bug (tree positions off by one)
is an error, in float16 too."""

from __future__ import annotations

import shutil

import yaml
from safetensors.torch import load_file, save_file

from decodebench.check import check_paths
from decodebench.config import load_config
from decodebench.harness import run_group
from decodebench.results import ids_sha256, load_result, write_result


def configure(tiny_config, model_dir, dtype, methods):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["dtype"] = dtype
    cfg["models"]["target"]["path"] = str(model_dir)
    cfg["models"]["draft"]["path"] = str(model_dir)  # the target drafts for itself: long accepted runs
    cfg["protocol"].update(max_new_tokens=10, warmups=0)
    cfg["check"] = {"cv_threshold": 10.0}  # timing noise of a tiny model is not under test
    cfg["experiments"]["main"]["methods"] = {m: {"method": m} for m in methods}
    tiny_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(tiny_config)


def measure(cfg, root, methods):
    outs = {m: root / "results" / "raw" / "tiny" / "main" / "docs" / f"{m}.json" for m in methods}
    run_group(cfg, "main", "docs", methods, outs, limit=2, progress=False)
    return outs


def lossless(root, cfg, path):
    report = check_paths([root / "results" / "raw"], cfg=cfg, root=root, regenerate_prompts=False)
    return [f for f in report.findings if f.rule == "lossless" and f.file.endswith(path)]


def test_a_mismatch_at_a_constructed_tie_is_a_warning(tiny_config, tiny_models, tmp_path):
    # AR's first token on the first prompt, A; make token B's output row equal to A's: an exact tie.
    model = tmp_path / "tied"
    shutil.copytree(tiny_models["llama"], model)
    cfg = configure(tiny_config, model, "float32", ["ar"])
    first = load_result(measure(cfg, tmp_path / "probe", ["ar"])["ar"])["records"][0]["output_ids"][0]
    weights = load_file(model / "model.safetensors")
    head = next(k for k in weights if k.endswith("lm_head.weight") or k.endswith("embed_tokens.weight"))
    tied = first + 1 if first + 1 < weights[head].shape[0] else first - 1
    weights[head][tied] = weights[head][first]
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    cfg = configure(tiny_config, model, "float32", ["ar", "linear"])
    outs = measure(cfg, tmp_path, ["ar", "linear"])
    ar = load_result(outs["ar"])
    assert ar["records"][0]["output_ids"][0] == min(first, tied)  # argmax takes the first of a tie
    assert ar["records"][0]["ar_top2_margin"][0] == 0.0
    assert lossless(tmp_path, cfg, "linear.json") == []  # the same choice in both: no finding
    # a correct implementation that breaks the tie the other way
    lin = load_result(outs["linear"])
    for r in lin["records"]:
        if r["prompt_index"] == 0:
            r["output_ids"][0] = max(first, tied)
            r["output_sha256"] = ids_sha256(r["output_ids"])
    write_result(outs["linear"], lin)
    (f,) = lossless(tmp_path, cfg, "linear.json")
    assert f.severity == "warning" and "position 0 margin 0" in f.message, f.message


def test_tree_positions_off_by_one_is_an_error_in_float16(tiny_config, tiny_models, tmp_path, monkeypatch):
    import decodebench.token_tree as T

    right = T.tree_position_ids
    monkeypatch.setattr(T, "tree_position_ids", lambda tree, slots, root: right(tree, slots, root + 1))
    cfg = configure(tiny_config, tiny_models["llama"], "float16", ["ar", "tree"])
    measure(cfg, tmp_path, ["ar", "tree"])
    (f,) = lossless(tmp_path, cfg, "tree.json")
    assert f.severity == "error" and "not at a tie" in f.message, f.message


def test_correct_methods_reproduce_ar_in_float16(tiny_config, tiny_models, tmp_path):
    """The control for the test above: without the planted bug, nothing fires (decisions in fp32)."""
    methods = ["ar", "tree", "linear", "dynatree"]
    cfg = configure(tiny_config, tiny_models["llama"], "float16", methods)
    measure(cfg, tmp_path, methods)
    for m in methods[1:]:
        assert lossless(tmp_path, cfg, f"{m}.json") == [], m
