"""How good and how cheap is the distilled draft? Agreement, cost ratio, and speculative speedups.

    PYTHONPATH=src python benchmarks/draft.py --config config/config.yaml [--out draft_benchmark.json]

The config must have ``models.draft.distilled`` and the draft must be built
(``decodebench build-draft --config ...``). All text comes from the draft's held-out
documents (named in its model card), never from its training documents. Measured:

- ``agreement_corpus``: teacher-forced on ``--prompts`` held-out corpus windows of
  ``--prompt-tokens + --new-tokens`` tokens: fraction of positions where the draft's argmax
  (full vocabulary) equals the target's.
- ``agreement_greedy``: the target greedily continues ``--prompts`` held-out prompts of
  ``--prompt-tokens`` tokens by ``--new-tokens`` tokens; teacher-forced on prompt +
  continuation, the fraction of continuation tokens the draft's argmax predicts (exactly what a
  greedy speculative method's draft is asked to do).
- ``cost``: median single-token decode step (KV cache, config threads) of draft and target,
  measured back-to-back in alternating rounds; ``cost_ratio`` = draft / target.
- ``speedups``: every registered method that needs a draft, with default parameters, run by the
  harness (``run_job``) on the same held-out prompts as AR; speedup = mean tokens/s over AR's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from decodebench.config import load_config
from decodebench.draft import step_cost
from decodebench.harness import run_job
from decodebench.methods import all_methods
from decodebench.models import load_model
from decodebench.prompts import documents


def heldout_prompts(card: dict, tokenizer, n: int, length: int) -> list[torch.Tensor]:
    """One window of `length` tokens from the middle of each of the first `n` held-out documents
    (cycling through them when there are fewer)."""
    held = set(card["corpus"]["heldout_documents"])
    docs = [tokenizer(text, add_special_tokens=False)["input_ids"]
            for doc_id, text in documents(card["recipe"]["corpus"]) if doc_id in held]
    out = []
    for i in range(n):
        ids = docs[i % len(docs)]
        start = (len(ids) // 2 + (i // len(docs)) * length) % max(1, len(ids) - length)
        out.append(torch.tensor(ids[start:start + length]))
    return out


@torch.inference_mode()
def agreement(draft, target, windows: list[torch.Tensor], from_pos: int = 0) -> float:
    hits = total = 0
    for w in windows:
        d = draft(w[None]).logits[0, from_pos:].argmax(-1)
        t = target(w[None]).logits[0, from_pos:].argmax(-1)
        hits, total = hits + int((d == t).sum()), total + len(t)
    return hits / total


@torch.inference_mode()
def greedy_continuations(target, prompts: list[torch.Tensor], new_tokens: int) -> list[torch.Tensor]:
    return [target.generate(p[None], max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            eos_token_id=None, pad_token_id=0)[0] for p in prompts]


def speedups(cfg_path: Path, prompts: list[torch.Tensor], new_tokens: int, workdir: Path) -> dict:
    methods = {m: {"method": m} for m, spec in sorted(all_methods().items()) if spec.needs_draft}
    if not methods:
        return {}
    prompts_file = workdir / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"id": f"heldout{i}", "source": "draft-heldout",
                                                "input_ids": p.tolist(), "text": ""}) + "\n"
                                    for i, p in enumerate(prompts)))
    raw = yaml.safe_load(cfg_path.read_text())
    # The harness reads the prompts from prompts_file; the dataset entry only names them.
    raw["datasets"] = {"heldout": {"loader": "jsonl", "path": str(prompts_file), "num_prompts": len(prompts),
                                   "prompt_tokens": len(prompts[0])}}
    raw["protocol"] = {**raw.get("protocol", {}), "max_new_tokens": new_tokens, "stop_at_eos": False}
    raw["experiments"] = {"draft": {"kind": "generic", "baseline": "ar", "datasets": ["heldout"],
                                    "methods": {"ar": {"method": "ar"}, **methods}}}
    bench_cfg = workdir / "config.yaml"
    bench_cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg2 = load_config(bench_cfg)
    results = {}
    for m in ["ar", *methods]:
        results[m] = run_job(cfg2, "draft", "heldout", m, workdir / f"{m}.json", prompts_path=prompts_file,
                             progress=False)["summary"]
    ar = results.pop("ar")["tokens_per_s"]["mean"]
    return {"ar_tokens_per_s": ar,
            **{m: {"tokens_per_s": s["tokens_per_s"]["mean"], "speedup": s["tokens_per_s"]["mean"] / ar,
                   **{k: v for k, v in s.items() if "accept" in k}} for m, s in results.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--cost-steps", type=int, default=30)
    ap.add_argument("--no-speedups", action="store_true")
    ap.add_argument("--prompt-file", type=Path,
                    help="agreement_greedy (and speedups) on the first --prompts prompts of this prompt set "
                         "(e.g. resources/prompts/embedded/gutenberg.jsonl, the prompts a study reports) instead "
                         "of the draft's held-out documents; the report says which were trained on")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    if "distilled" not in cfg["models"].get("draft", {}):
        sys.exit(f"{args.config}: models.draft.distilled is not set")
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    res = cfg.get("resources_dir", "resources")
    target = load_model(cfg["models"]["target"], resources_dir=res)
    draft = load_model(cfg["models"]["draft"], resources_dir=res)
    card = draft.identity["card"]
    windows = heldout_prompts(card, target.tokenizer, args.prompts, args.prompt_tokens + args.new_tokens)
    trained_on = None
    if args.prompt_file:
        rows = [json.loads(line) for line in args.prompt_file.read_text().splitlines()][:args.prompts]
        prompts = [torch.tensor(r["input_ids"]) for r in rows]
        args.prompt_tokens = len(prompts[0])
        if any(len(p) != args.prompt_tokens for p in prompts):
            sys.exit(f"{args.prompt_file}: prompts of different lengths; use a set of one prompt length")
        left_out = set(card["corpus"]["heldout_documents"]) | set(card.get("excluded_prompt_documents", []))
        trained_on = sorted({r["source"] for r in rows} - left_out)
    else:
        prompts = heldout_prompts(card, target.tokenizer, args.prompts, args.prompt_tokens)
    continued = greedy_continuations(target.model, prompts, args.new_tokens)
    report = {
        "draft": draft.identity["name"], "draft_weights_sha256": draft.identity["weights_sha256"],
        "threads": torch.get_num_threads(), "cpu": _cpu(),
        "agreement_corpus": agreement(draft.model, target.model, windows),
        "agreement_greedy": agreement(draft.model, target.model, continued, from_pos=args.prompt_tokens - 1),
        "cost": step_cost(draft.model, target.model, prompts[0][None, :64], args.cost_steps),
        "prompts": len(prompts), "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
        "prompts_from": str(args.prompt_file) if args.prompt_file else "the draft's held-out documents",
        "prompt_documents_trained_on": trained_on,
    }
    if not args.no_speedups:
        with tempfile.TemporaryDirectory() as tmp:
            report["speedups"] = speedups(args.config, prompts, args.new_tokens, Path(tmp))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
