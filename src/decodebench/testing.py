"""Tiny random-weight models and a tiny tokenizer, built from a config (no network).

Used by the tests and by the pipeline's test config: ``decodebench make-tiny-model DIR``.
The tokenizer is a byte-level BPE trained on a few lines of the embedded corpus, so the
same tiny model can run every loader, including Gutenberg.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

ARCHS = ("llama", "gpt_neox")
_CORPUS = [
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer",
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles,",
    "and by opposing end them. To die, to sleep; no more; and by a sleep to say we end",
    "The quick brown fox jumps over the lazy dog. 0123456789 = - , . ; : ! ? ' \" ( )",
]


def make_tokenizer(vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")


def make_tiny_model(directory: str | Path, arch: str = "llama", seed: int = 0, layers: int = 2,
                    hidden: int = 64, vocab_size: int = 320) -> Path:
    """Write a random-weight causal LM with a matching tokenizer to `directory`."""
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, LlamaConfig, PretrainedConfig

    tokenizer = make_tokenizer(vocab_size)
    vocab = len(tokenizer)
    eos = tokenizer.eos_token_id
    config: PretrainedConfig
    if arch == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=2048, eos_token_id=eos, bos_token_id=eos,
                             pad_token_id=eos, tie_word_embeddings=False)
    elif arch == "gpt_neox":
        config = GPTNeoXConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                               num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=2048,
                               eos_token_id=eos, bos_token_id=eos, pad_token_id=eos,
                               rotary_pct=0.25,  # type: ignore[call-arg]  # 4.x's name; 5.x converts it
                               use_parallel_residual=True)
    else:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Larger-than-default init so that greedy outputs vary with the context (random tiny
    # models otherwise repeat one token, which would make lossless tests weak).
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    (directory / "tiny_model.json").write_text(json.dumps({"arch": arch, "seed": seed, "layers": layers,
                                                           "hidden": hidden}) + "\n")
    return directory


# --- how the workflow schedules GPU benchmark jobs ------------------------------------------------

WORKFLOW_FILES = ("Snakefile", "workflow", "templates", "scripts", "profiles", "config")
_FAKE_DECODEBENCH = '''#!{python}
"""Stand-in for decodebench: prepare-prompts writes its file, run sleeps and records its span."""
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
if args[0] == "prepare-prompts":
    dataset = args[args.index("--dataset") + 1]
    out = Path("resources/prompts/gpuplan") / f"{{dataset}}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
elif args[0] == "run":
    start = time.time()
    time.sleep({sleep_s})
    outs = [args[i + 1] for i, a in enumerate(args) if a == "--out"]
    for o in outs:
        Path(o).parent.mkdir(parents=True, exist_ok=True)
        Path(o).write_text("{{}}")
    with open("spans.jsonl", "a") as fh:
        fh.write(json.dumps({{"outs": outs, "start": start, "end": time.time()}}) + "\\n")
else:
    sys.exit(f"unexpected: {{args}}")
'''
GPU_EXPERIMENTS = ("main", "memory", "length")


def gpu_plan_workspace(repo: str | Path, directory: str | Path, sleep_s: float = 2.0) -> Path:
    """A copy of the workflow in `directory` with a CUDA study of three one-job experiments
    (config/gpu.yaml) and a stand-in ``bin/decodebench`` whose benchmark job sleeps `sleep_s`
    and records when it ran: the real workflow's schedule, with no GPU and no model."""
    import shutil
    import stat
    import sys

    import yaml

    repo, ws = Path(repo), Path(directory)
    ws.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src, dst = repo / name, ws / name
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    cfg = {"study": "gpuplan", "device": "cuda", "dtype": "float16", "threads": 1,
           "models": {"target": {"name": "m", "path": str(ws / "model")}},
           "datasets": {"docs": {"loader": "jsonl", "path": "docs.jsonl", "num_prompts": 1, "prompt_tokens": 4}},
           "protocol": {"max_new_tokens": 2},
           "experiments": {e: {"baseline": "ar", "datasets": ["docs"], "methods": {"ar": {"method": "ar"}}}
                           for e in GPU_EXPERIMENTS}}
    (ws / "config" / "gpu.yaml").write_text(yaml.safe_dump(cfg))
    (ws / "bin").mkdir()
    fake = ws / "bin" / "decodebench"
    fake.write_text(_FAKE_DECODEBENCH.format(python=sys.executable, sleep_s=sleep_s))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return ws


def gpu_plan_spans(repo: str | Path, ws: Path, *extra: str, visible: str | None) -> list[tuple[float, float]]:
    """Run the workspace's three benchmark jobs through Snakemake (--cores 4, the default
    profile), CUDA_VISIBLE_DEVICES = `visible` (None: unset); their (start, end), sorted.
    Raises RuntimeError with Snakemake's stderr when the run fails."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(PATH=f"{ws / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               PYTHONPATH=f"{Path(repo) / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}")
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    targets = [f"results/raw/gpuplan/{e}/docs/ar.json" for e in GPU_EXPERIMENTS]
    proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "4", *extra,
                           "--configfile", "config/gpu.yaml"], cwd=ws, env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    spans = [json.loads(line) for line in (ws / "spans.jsonl").read_text().splitlines()]
    if len(spans) != len(GPU_EXPERIMENTS):
        raise RuntimeError(f"expected {len(GPU_EXPERIMENTS)} benchmark jobs in spans.jsonl, found {len(spans)}")
    return sorted((s["start"], s["end"]) for s in spans)


def overlapping(spans: list[tuple[float, float]]) -> bool:
    """Whether any two of the sorted (start, end) spans overlap."""
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
