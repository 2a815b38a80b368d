"""A draft model distilled from the target, with a reduced output vocabulary.

The draft is a small Llama (same tokenizer as the target) whose output layer covers only the
``vocab_size`` token ids most frequent in the training corpus. ``ReducedVocabLlamaForCausalLM``
computes those reduced logits and scatters them into a full-vocabulary tensor filled with
``finfo.min``, so every decoding method (and transformers' assisted generation) uses it like
any causal LM over the target's vocabulary: a token outside the reduced vocabulary is simply
never proposed.

Build (``build_draft``; ``decodebench build-draft --config C``), all deterministic for a fixed
seed and thread count:

1. Corpus: the recipe's ``corpus`` (a dataset spec; default the embedded Gutenberg plays),
   tokenized with the target's tokenizer. Documents are shuffled with ``random.Random(seed)``;
   the first ``heldout_documents`` are held out for evaluation, the rest train.
2. Reduced vocabulary: the ``vocab_size`` most frequent token ids of the training documents
   (ties by id), plus the target's special tokens (EOS, BOS, PAD).
   With ``exclude_prompt_documents``, every document a prompt set of the study (same loader) is
   cut from is left out first, so the draft never trains on the text it is measured on.
3. Teacher labels: ``train_sequences`` windows of ``seq_len`` tokens drawn with the seed from
   the training documents; with ``teacher: generated`` (self-distillation, as Medusa-2 and
   EAGLE train their drafters) each window keeps its first ``prefix_tokens`` corpus tokens and
   the rest is the target's own greedy continuation, the text the draft has to predict at
   decoding time. The target's top-``top_k`` next-token probabilities at every position,
   computed once and cached under ``<resources>/draft-cache/`` (keyed by target weights,
   corpus and selection; generated windows likewise). The held-out windows (continued the same
   way) get the target's argmax.
4. Initialisation (``init: target``): input embeddings (frozen) and final norm from the target,
   the output layer from the target's (tied) embedding rows of the reduced vocabulary, and the
   decoder layers from the target layers ``init_layers`` (default the first ``layers``); with
   ``init: random`` everything but the frozen embeddings is random.
5. Training: ``steps`` AdamW steps (lr ``lr``, linear warm-up over the first 5 %, cosine decay)
   over batches of ``batch_size`` labelled windows in a seeded order, minimising the soft
   cross-entropy between the target's top-k distribution (restricted to the reduced vocabulary
   and renormalised) and the draft's; ``time_budget_s`` optionally stops earlier (recorded;
   not deterministic).
6. Evaluation: held-out greedy agreement (fraction of positions of the held-out windows, teacher-
   forced, where the draft's full-vocabulary argmax equals the target's; with ``teacher:
   generated`` over the continued positions only), the
   coverage (fraction of those target argmax tokens inside the reduced vocabulary: the ceiling
   of agreement), and the single-token decode cost of draft and target measured back-to-back.
7. Written atomically to ``<resources>/models/<name>/`` (temp dir + rename) with the model card
   ``decodebench_model.json`` (identity, recipe and its hash, provenance, the figures of 6).
   A present draft whose recipe hash matches is left alone; any recipe change rebuilds it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import LlamaConfig

from .config import canonical_hash, config_label
from .draft_model import ReducedVocabLlamaForCausalLM
from .models import CARD, LoadedModel, load_model, model_dir, weights_sha256
from .results import atomic_write_text

CACHE_DIR = "draft-cache"
TEACHERS = ("corpus", "generated")


@dataclass
class Recipe:
    """The keys of ``models.draft.distilled`` (all optional; these are the defaults)."""

    layers: int = 1  # decoder layers of the draft
    hidden_size: int | None = None  # None: the target's (required for init: target)
    intermediate_size: int | None = None  # None: the target's
    vocab_size: int = 8192  # reduced output vocabulary (most frequent corpus tokens)
    init: str = "target"  # "target" or "random"
    init_layers: list[int] | None = None  # target layers copied (init: target); default 0..layers-1
    corpus: dict = field(default_factory=lambda: {"loader": "gutenberg"})  # a dataset spec
    heldout_documents: int = 8
    seq_len: int = 128
    train_sequences: int = 256  # teacher-labelled training windows
    eval_sequences: int = 16  # held-out windows for agreement
    top_k: int = 32
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-3
    time_budget_s: float | None = None
    seed: int = 0  # parse_recipe: the study's seed where the recipe names none
    cost_steps: int = 30  # decode steps timed for the cost ratio
    # "corpus": windows of corpus text; "generated" (self-distillation): the first prefix_tokens
    # of each window, continued by the target's own greedy decoding to seq_len tokens
    teacher: str = "corpus"
    prefix_tokens: int = 32
    # leave out of training every document a prompt set of the study (same loader) is cut from
    exclude_prompt_documents: bool = False
    # torch threads for labelling and training (not for the cost ratio, timed at the study's
    # threads); None: the study's threads. Part of the recipe: the thread count can change the
    # float reductions, hence the weights
    threads: int | None = None


def parse_recipe(raw: dict, where: str, default_seed: int) -> Recipe:
    names = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(names))})")
    recipe = Recipe(**{**raw, "seed": default_seed if raw.get("seed") is None else raw["seed"]})
    if recipe.init not in {"target", "random"}:
        raise ValueError(f"{where}.init: expected 'target' or 'random', got {recipe.init!r}")
    if recipe.teacher not in TEACHERS:
        raise ValueError(f"{where}.teacher: expected one of {', '.join(TEACHERS)}, got {recipe.teacher!r}")
    if recipe.teacher == "generated" and not 1 <= recipe.prefix_tokens < recipe.seq_len:
        raise ValueError(f"{where}.prefix_tokens: expected 1 <= prefix_tokens < seq_len ({recipe.seq_len}), "
                         f"got {recipe.prefix_tokens!r}")
    return recipe


# ---------------------------------------------------------------- data


@dataclass
class CorpusSplit:
    train: list[torch.Tensor]  # token ids per training document
    heldout: list[torch.Tensor]
    train_ids: list[str]
    heldout_ids: list[str]
    sha256: str  # over (doc id, token ids) of every document, in loader order


def split_corpus(recipe: Recipe, tokenizer, exclude: frozenset[str] = frozenset()) -> CorpusSplit:
    """Tokenized corpus documents (those in `exclude` left out), shuffled and split."""
    from .prompts import documents

    docs = [(doc_id, tokenizer(text, add_special_tokens=False)["input_ids"])
            for doc_id, text in documents(recipe.corpus) if doc_id not in exclude]
    docs = [(d, ids) for d, ids in docs if len(ids) > recipe.seq_len + 1]
    if len(docs) <= recipe.heldout_documents:
        raise ValueError(f"draft corpus {recipe.corpus}: {len(docs)} documents longer than seq_len "
                         f"{recipe.seq_len}; need more than heldout_documents={recipe.heldout_documents}")
    sha = canonical_hash([[d, ids] for d, ids in docs])
    order = list(range(len(docs)))
    random.Random(recipe.seed).shuffle(order)
    held, train = order[:recipe.heldout_documents], sorted(order[recipe.heldout_documents:])
    held.sort()
    return CorpusSplit(train=[torch.tensor(docs[i][1]) for i in train],
                       heldout=[torch.tensor(docs[i][1]) for i in held],
                       train_ids=[docs[i][0] for i in train], heldout_ids=[docs[i][0] for i in held], sha256=sha)


def reduced_vocabulary(docs: list[torch.Tensor], size: int, full_size: int, special: list[int]) -> torch.Tensor:
    """The `size` most frequent ids of `docs` (ties by id) plus `special`, ascending. [<= size + len(special)]"""
    counts = torch.bincount(torch.cat(docs), minlength=full_size)[:full_size]
    order = sorted(range(full_size), key=lambda i: (-int(counts[i]), i))
    chosen = set(order[:min(size, full_size)]) | {s for s in special if s is not None and 0 <= s < full_size}
    return torch.tensor(sorted(chosen), dtype=torch.long)


def sample_windows(docs: list[torch.Tensor], n: int, seq_len: int, seed: int) -> torch.Tensor:
    """`n` windows of `seq_len` tokens: document chosen in proportion to its length, random offset. [n, seq_len]"""
    rng = random.Random(seed)
    weights = [len(d) - seq_len for d in docs]
    out = []
    for _ in range(n):
        d = rng.choices(range(len(docs)), weights=weights)[0]
        start = rng.randrange(len(docs[d]) - seq_len)
        out.append(docs[d][start:start + seq_len])
    return torch.stack(out)


@torch.inference_mode()
def teacher_topk(target, windows: torch.Tensor, k: int, batch_size: int = 8, progress: bool = True):
    """The target's top-k next-token probabilities. -> (probs [n, seq, k] float32, ids [n, seq, k] int64)"""
    from tqdm import tqdm

    probs, ids = [], []
    for i in tqdm(range(0, len(windows), batch_size), desc="draft: teacher labels", disable=not progress,
                  unit="batch"):
        logits = target(windows[i:i + batch_size]).logits.float()  # [b, seq, vocab]
        p, j = torch.softmax(logits, -1).topk(k, -1)
        probs.append(p)
        ids.append(j)
    return torch.cat(probs), torch.cat(ids)


@torch.inference_mode()
def greedy_continuations(target, prefixes: torch.Tensor, length: int, batch_size: int = 16,
                         progress: bool = True) -> torch.Tensor:
    """Each prefix [n, p] continued by the target's greedy decoding (argmax over float32 logits,
    EOS an ordinary token) to `length` tokens. -> [n, length]"""
    from tqdm import tqdm
    from transformers import DynamicCache

    out = []
    for i in tqdm(range(0, len(prefixes), batch_size), desc="draft: target continuations", disable=not progress,
                  unit="batch"):
        ids = prefixes[i:i + batch_size]
        cache = DynamicCache(config=target.config)
        logits = target(ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        seq = [ids]
        for step in range(length - ids.shape[1]):
            token = logits.float().argmax(-1, keepdim=True)  # [b, 1]
            seq.append(token)
            if step < length - ids.shape[1] - 1:
                logits = target(token, past_key_values=cache, use_cache=True).logits[:, -1]
        out.append(torch.cat(seq, 1))
    return torch.cat(out)


def prompt_documents(cfg: dict, corpus: dict, tokenizer) -> frozenset[str]:
    """The documents every prompt set of the study with the corpus's loader is cut from."""
    from .prompts import select_prompts

    out = set()
    for spec in cfg.get("datasets", {}).values():
        if spec.get("loader") != corpus.get("loader") or spec.get("path") != corpus.get("path"):
            continue
        spec = {"seed": cfg.get("seed", 0), "min_tokens": spec["prompt_tokens"], **spec}
        out |= {p["source"] for p in select_prompts(spec, tokenizer)}
    return frozenset(out)


def _cached(path: Path, compute):
    """compute(), cached as a torch file (tensors and tuples of them); loaded with
    weights_only=True, which unpickles no code, whatever the torch version's default."""
    if path.exists():
        return torch.load(path, weights_only=True)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)
    return value


# ---------------------------------------------------------------- model


def make_draft(target, recipe: Recipe, vocab_ids: torch.Tensor) -> ReducedVocabLlamaForCausalLM:
    tc = target.config
    hidden = recipe.hidden_size or tc.hidden_size
    if recipe.init == "target" and hidden != tc.hidden_size:
        raise ValueError(f"init: target needs hidden_size = the target's ({tc.hidden_size}), got {hidden}")
    config = LlamaConfig(
        vocab_size=tc.vocab_size, hidden_size=hidden, intermediate_size=recipe.intermediate_size or tc.intermediate_size,
        num_hidden_layers=recipe.layers, num_attention_heads=tc.num_attention_heads if hidden == tc.hidden_size else max(1, hidden // 64),
        num_key_value_heads=tc.num_key_value_heads if hidden == tc.hidden_size else max(1, hidden // 192),
        head_dim=getattr(tc, "head_dim", None) if hidden == tc.hidden_size else 64,
        max_position_embeddings=tc.max_position_embeddings, rms_norm_eps=tc.rms_norm_eps,
        rope_parameters=getattr(tc, "rope_parameters", None), hidden_act=tc.hidden_act,
        bos_token_id=tc.bos_token_id, eos_token_id=tc.eos_token_id, pad_token_id=tc.pad_token_id,
        tie_word_embeddings=False, draft_vocab_size=len(vocab_ids),  # type: ignore[call-arg]  # kept on the config
        architectures=["ReducedVocabLlamaForCausalLM"])
    torch.manual_seed(recipe.seed)
    draft = ReducedVocabLlamaForCausalLM(config).float()
    with torch.no_grad():
        draft.vocab_ids.copy_(vocab_ids)
        embed = target.get_input_embeddings().weight
        if embed.shape[1] == hidden:
            draft.model.embed_tokens.weight.copy_(embed)
        else:  # a narrower draft: project the target's embeddings on their top principal directions
            _, _, v = torch.linalg.svd(embed - embed.mean(0), full_matrices=False)
            draft.model.embed_tokens.weight.copy_(embed @ v[:hidden].T)
        if recipe.init == "target":
            draft.lm_head.weight.copy_(target.get_output_embeddings().weight[vocab_ids])
            draft.model.norm.load_state_dict(target.model.norm.state_dict())
            layers = recipe.init_layers if recipe.init_layers is not None else list(range(recipe.layers))
            if len(layers) != recipe.layers:
                raise ValueError(f"init_layers {layers}: expected {recipe.layers} target layer indices")
            for mine, theirs in zip(draft.model.layers, layers):
                mine.load_state_dict(target.model.layers[theirs].state_dict())
    draft.model.embed_tokens.weight.requires_grad_(False)  # full vocabulary; a dense gradient would dominate
    return draft


def soft_cross_entropy(reduced_logits: torch.Tensor, probs: torch.Tensor, ids: torch.Tensor,
                       to_reduced: torch.Tensor) -> torch.Tensor:
    """Mean over positions of -sum_j p_j log q(id_j), with the target's top-k `probs`/`ids`
    restricted to the reduced vocabulary and renormalised (positions with no mass there: skipped).
    reduced_logits [b, s, V_r]; probs, ids [b, s, k]; to_reduced [vocab] (-1 outside)."""
    r = to_reduced[ids]  # [b, s, k]
    p = torch.where(r >= 0, probs, 0.0)
    mass = p.sum(-1, keepdim=True)  # [b, s, 1]
    keep = mass.squeeze(-1) > 0
    p = p / mass.clamp_min(1e-9)
    logq = torch.log_softmax(reduced_logits.float(), -1).gather(-1, r.clamp_min(0))  # [b, s, k]
    per_pos = -(p * logq).sum(-1)
    return per_pos[keep].mean()


def train(draft, recipe: Recipe, windows: torch.Tensor, probs: torch.Tensor, ids: torch.Tensor,
          progress: bool = True) -> dict:
    """AdamW over seeded batches of the labelled windows; returns {'steps', 'final_loss', 'wall_time_s', 'stopped_by'}."""
    from tqdm import tqdm

    to_reduced = torch.full((draft.config.vocab_size,), -1, dtype=torch.long)
    to_reduced[draft.vocab_ids] = torch.arange(len(draft.vocab_ids))
    params = [p for p in draft.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    total, warmup = max(1, recipe.steps), max(1, recipe.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, total) / total))))
    gen = torch.Generator().manual_seed(recipe.seed)
    order = torch.empty(0, dtype=torch.long)
    draft.train()
    start, losses, step, stopped_by = time.perf_counter(), [], 0, "steps"
    bar = tqdm(total=recipe.steps, desc="draft: training", disable=not progress, unit="step")
    for step in range(1, recipe.steps + 1):  # noqa: B007 (the last step is reported)
        if len(order) < recipe.batch_size:
            order = torch.cat([order, torch.randperm(len(windows), generator=gen)])
        batch, order = order[:recipe.batch_size], order[recipe.batch_size:]
        loss = soft_cross_entropy(draft.reduced_logits(windows[batch]), probs[batch], ids[batch], to_reduced)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if recipe.time_budget_s is not None and time.perf_counter() - start > recipe.time_budget_s:
            stopped_by = "time_budget_s"
            break
    bar.close()
    draft.eval()
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": step, "final_loss": sum(tail) / len(tail) if tail else None, "wall_time_s": time.perf_counter() - start,
            "stopped_by": stopped_by}


# ---------------------------------------------------------------- evaluation


@torch.inference_mode()
def greedy_agreement(draft, windows: torch.Tensor, target_argmax: torch.Tensor, positions: slice = slice(None),
                     batch_size: int = 8) -> float:
    """Fraction of `positions` of `windows` [n, s] (teacher-forced) where the draft's argmax over
    the full vocabulary equals `target_argmax` [n, s]."""
    hits, total = 0, 0
    for i in range(0, len(windows), batch_size):
        same = draft(windows[i:i + batch_size]).logits.argmax(-1) == target_argmax[i:i + batch_size]
        hits += int(same[:, positions].sum())
        total += same[:, positions].numel()
    return hits / total


@torch.inference_mode()
def decode_step_s(model, prompt: torch.Tensor, steps: int) -> list[float]:
    """Wall time of each of `steps` single-token greedy decode steps with a KV cache after
    prefilling `prompt` [1, p]."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    token = model(prompt, past_key_values=cache, use_cache=True).logits[:, -1:].argmax(-1)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        token = model(token, past_key_values=cache, use_cache=True).logits[:, -1:].argmax(-1)
        times.append(time.perf_counter() - t0)
    return times


def step_cost(draft, target, prompt: torch.Tensor, steps: int, rounds: int = 3) -> dict:
    """Median decode-step time of draft and target, measured back-to-back in alternating rounds
    (so background load hits both alike); cost_ratio = draft / target."""
    d, t = [], []
    decode_step_s(draft, prompt, 3), decode_step_s(target, prompt, 3)  # warm-up
    for _ in range(rounds):
        d += decode_step_s(draft, prompt, steps)
        t += decode_step_s(target, prompt, steps)
    dm, tm = statistics.median(d), statistics.median(t)
    return {"draft_step_ms": 1000 * dm, "target_step_ms": 1000 * tm, "cost_ratio": dm / tm,
            "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- build


def recipe_sha256(recipe: Recipe, target_identity: dict, exclude: frozenset[str] = frozenset()) -> str:
    """What the draft depends on: the recipe, the target's weights and the documents left out.

    Keys added after drafts were first built are left out where they change nothing (teacher
    corpus, hence prefix_tokens unused; no exclusion), so a draft built before them stays valid."""
    fields = dataclasses.asdict(recipe)
    if recipe.teacher == "corpus":
        del fields["teacher"], fields["prefix_tokens"]
    if not recipe.exclude_prompt_documents:
        del fields["exclude_prompt_documents"]
    if recipe.threads is None:
        del fields["threads"]
    identity = {"recipe": fields, "target": target_identity["weights_sha256"]}
    if exclude:
        identity["excluded_documents"] = sorted(exclude)
    return canonical_hash(identity)


def build_draft(cfg: dict, progress: bool = True, force: bool = False) -> tuple[Path, bool]:
    """Build the config's distilled draft once. Returns (directory, built) where built is False
    when an up-to-date draft (same recipe hash) was already there."""
    where = f"{config_label(cfg)}: models.draft"
    spec = cfg["models"].get("draft")
    if spec is None or "distilled" not in spec:
        raise ValueError(f"{where}: no distilled draft configured (models.draft.distilled)")
    recipe = parse_recipe(spec["distilled"], f"{where}.distilled", cfg.get("seed", 0))
    resources = Path(cfg.get("resources_dir", "resources"))
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    target = load_model(cfg["models"]["target"], "cpu", "float32", resources)
    exclude = (prompt_documents(cfg, recipe.corpus, target.tokenizer) if recipe.exclude_prompt_documents
               else frozenset())
    digest = recipe_sha256(recipe, target.identity, exclude)
    out = model_dir(spec, resources)
    if not force and (out / CARD).exists() and json.loads((out / CARD).read_text()).get("recipe_sha256") == digest:
        return out, False
    card = distil(target, recipe, resources, out, spec["name"], digest, spec["distilled"], progress, exclude)
    if progress:
        print(f"draft {spec['name']}: agreement {card['heldout_greedy_agreement']:.3f}, "
              f"cost {card['cost_ratio']:.3f} of a target step, {card['training']['wall_time_s']:.0f} s training")
    return out, True


@dataclass
class TeacherData:
    split: CorpusSplit
    vocab_ids: torch.Tensor  # [V_r] ascending
    windows: torch.Tensor  # [train_sequences, seq_len]
    probs: torch.Tensor  # [train_sequences, seq_len, top_k]
    ids: torch.Tensor  # [train_sequences, seq_len, top_k]
    eval_windows: torch.Tensor  # [eval_sequences, seq_len]
    target_argmax: torch.Tensor  # [eval_sequences, seq_len]
    teacher_s: float  # time spent labelling (0 when cached)


def teacher_data(target: LoadedModel, recipe: Recipe, resources: Path, progress: bool = True,
                 exclude: frozenset[str] = frozenset()) -> TeacherData:
    """Steps 1-3: split, reduced vocabulary, windows and the target's labels (cached under
    ``<resources>/draft-cache/``, keyed by target weights, corpus, windows and top_k). With
    ``teacher: generated`` the windows (training and held-out) are the target's own greedy
    continuations of their first ``prefix_tokens`` corpus tokens (cached likewise)."""
    tok, tmodel = target.tokenizer, target.model
    split = split_corpus(recipe, tok, exclude)
    special = [tmodel.config.eos_token_id, tmodel.config.bos_token_id, tmodel.config.pad_token_id]
    vocab_ids = reduced_vocabulary(split.train, recipe.vocab_size, tmodel.config.vocab_size, special)
    windows = sample_windows(split.train, recipe.train_sequences, recipe.seq_len, recipe.seed)
    eval_windows = sample_windows(split.heldout, recipe.eval_sequences, recipe.seq_len, recipe.seed + 1)
    weights = target.identity["weights_sha256"]
    if recipe.teacher == "generated":
        def continued(w: torch.Tensor, what: str) -> torch.Tensor:
            key = canonical_hash({"target": weights, "prefixes": canonical_hash(w[:, :recipe.prefix_tokens].tolist()),
                                  "length": recipe.seq_len})
            return _cached(resources / CACHE_DIR / f"generated-{what}-{key[:16]}.pt",
                           lambda: greedy_continuations(tmodel, w[:, :recipe.prefix_tokens], recipe.seq_len,
                                                        progress=progress))
        windows, eval_windows = continued(windows, "train"), continued(eval_windows, "eval")
    key = canonical_hash({"target": weights, "corpus": split.sha256, "windows": canonical_hash(windows.tolist()),
                          "k": recipe.top_k})
    ekey = canonical_hash({"target": weights, "windows": canonical_hash(eval_windows.tolist())})
    t0 = time.perf_counter()
    probs, ids = _cached(resources / CACHE_DIR / f"train-{key[:16]}.pt",
                         lambda: teacher_topk(tmodel, windows, recipe.top_k, progress=progress))
    target_argmax = _cached(resources / CACHE_DIR / f"eval-{ekey[:16]}.pt",
                            lambda: teacher_topk(tmodel, eval_windows, 1, progress=False)[1][..., 0])
    return TeacherData(split, vocab_ids, windows, probs, ids, eval_windows, target_argmax, time.perf_counter() - t0)


def distil(target: LoadedModel, recipe: Recipe, resources: Path, out: Path, name: str, digest: str,
           distilled: dict, progress: bool = True, exclude: frozenset[str] = frozenset()) -> dict:
    """Steps 1-7 of the module docstring; returns the model card."""
    t_start = time.perf_counter()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    study_threads = torch.get_num_threads()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    build_threads = torch.get_num_threads()
    try:
        tok, tmodel = target.tokenizer, target.model
        data = teacher_data(target, recipe, resources, progress, exclude)
        split, vocab_ids, windows, eval_windows = data.split, data.vocab_ids, data.windows, data.eval_windows
        draft = make_draft(tmodel, recipe, vocab_ids)
        training = train(draft, recipe, windows, data.probs, data.ids, progress)
        positions = slice(recipe.prefix_tokens - 1, None) if recipe.teacher == "generated" else slice(None)
        agreement = greedy_agreement(draft, eval_windows, data.target_argmax, positions)
        coverage = float(torch.isin(data.target_argmax, vocab_ids).float().mean())
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(study_threads)
    cost = step_cost(draft, tmodel, eval_windows[:1, :64], recipe.cost_steps)

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    draft.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if getattr(tmodel, "generation_config", None) is not None:
        tmodel.generation_config.save_pretrained(tmp)
    card = {
        "name": name, "source": f"distilled:{target.identity['name']}",
        "weights_sha256": weights_sha256(tmp), "recipe_sha256": digest,
        "distilled": distilled, "recipe": dataclasses.asdict(recipe), "seed": recipe.seed,
        "target": {"name": target.identity["name"], "weights_sha256": target.identity["weights_sha256"]},
        "architecture": "ReducedVocabLlamaForCausalLM", "layers": recipe.layers,
        "hidden_size": draft.config.hidden_size, "vocab_size": int(len(vocab_ids)),
        "full_vocab_size": draft.config.vocab_size,
        "corpus": {"spec": recipe.corpus, "sha256": split.sha256, "train_documents": len(split.train),
                   "heldout_documents": split.heldout_ids,
                   "train_tokens_labelled": int(windows.numel())},
        "training": {**training, "teacher_labels_s": data.teacher_s, "threads": build_threads},
        "heldout_greedy_agreement": agreement,
        "heldout_agreement_definition": (
            f"teacher-forced on {recipe.eval_sequences} held-out corpus windows of {recipe.seq_len} tokens: "
            "fraction of positions where the draft's argmax equals the target's" if recipe.teacher == "corpus" else
            f"teacher-forced on the target's greedy continuations of {recipe.eval_sequences} held-out corpus "
            f"prefixes of {recipe.prefix_tokens} tokens to {recipe.seq_len}: fraction of the continued positions "
            "where the draft's argmax equals the target's (the target's next token there)"),
        "excluded_prompt_documents": sorted(exclude),
        "heldout_vocab_coverage": coverage,
        **cost,
        "build_wall_time_s": time.perf_counter() - t_start,
    }
    atomic_write_text(tmp / CARD, json.dumps(card, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return card
