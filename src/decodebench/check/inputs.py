"""Rules that compare a result with its inputs as they are now: staleness, dataset-provenance.

Staleness: the job (``provenance.job_sha256`` against ``resolve_job`` on the current config;
``provenance.job`` names the field that changed), the prompt file (its ``.meta.json`` hash),
the model weights (``weights_sha256`` of a local directory or a materialised model's card),
the code (``provenance.code_version``), and for imported results the third-party source file.

Dataset provenance: the dataset's label says what the text is (embedded sources say so), the loader matches the source kind and the records' prompt ids, the prompt file's
meta names the same loader, and the prompt set is re-made with the named loader and the
target's tokenizer when both are available, and must hash to the recorded prompt_sha256.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ConfigError, canonical_hash
from ..jobs import resolve_job
from ..results import file_sha256
from .per_result import Result
from .report import Report

if TYPE_CHECKING:
    from .tuning import TuningStage

PUBLIC_DATASETS = {"wikitext": ("wikitext",), "pg19": ("pg19", "pg-19")}  # loader: how it is written
# Source kinds whose label must say so. Embedded text could pass for a public dataset; an
# imported result is marked by kind "imported" and its source file (rule provenance), and keeps
# the dataset name its source measured on.
MARKED_KINDS = ("embedded",)


def _under(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _resolve(path: str | None, root: Path) -> Path | None:
    return _under(path, root) if path else None


def _diff(old, new, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if old == new else [f"{prefix or '(job)'}: recorded {old!r}, current {new!r}"]


class Inputs:
    """Current inputs, each derived once per check run (weights hashes are expensive)."""

    def __init__(self, cfg: dict | None, root: Path):
        self.cfg, self.root = cfg, root
        self._weights: dict[str, str | None] = {}
        self._prompt_sets: dict[str, tuple[str | None, str]] = {}
        self._tokenizers: dict[str, object] = {}
        self.tuning_stages: dict[Path, TuningStage] = {}  # picks file -> its stage

    def study_config(self, res: Result) -> dict | None:
        """The config if it describes this result's study, else None (only the result itself is used)."""
        return self.cfg if self.cfg is not None and self.cfg.get("study") == res.data["study"] else None

    def same_study(self, res: Result) -> bool:
        return self.study_config(res) is not None

    @property
    def resources_dir(self) -> Path:
        return _under(str(self.cfg.get("resources_dir", "resources")) if self.cfg else "resources", self.root)

    def model_dir(self, spec: dict | None, recorded: dict) -> tuple[Path | None, str]:
        """(the model's directory here now, or None; where or why). Never downloads or builds:
        GGUF and distilled models count only once materialised under resources/models/."""
        from ..models import CARD

        kind = recorded.get("source", "").split(":", 1)[0]
        if spec is not None and "path" in spec:
            where = _under(spec["path"], self.root)
        elif (spec is not None and ("gguf" in spec or "distilled" in spec)) or (
                spec is None and kind in ("gguf", "distilled")):
            where = self.resources_dir / "models" / (spec or recorded)["name"]
            if not (where / CARD).exists():
                return None, f"{where / CARD} not found (model not materialised here)"
        elif spec is None and kind == "local":
            where = _under(recorded["source"][len("local:"):], self.root)
        else:
            return None, f"model source {recorded.get('source')!r} is not a directory here (hub models are not fetched)"
        return (where, str(where)) if where.is_dir() else (None, f"{where} not found")

    def weights_sha256(self, spec: dict | None, recorded: dict) -> tuple[str | None, str]:
        """(current weights hash or None, where it came from or why there is none)."""
        from ..models import CARD, ModelUnavailable, weights_sha256

        where, why = self.model_dir(spec, recorded)
        if where is None:
            return None, why
        if why not in self._weights:
            card = where / CARD
            try:  # a materialised model's card holds the hash of its weight files
                self._weights[why] = (json.loads(card.read_text())["weights_sha256"] if card.exists()
                                      else weights_sha256(where))
            except (ModelUnavailable, KeyError, json.JSONDecodeError):
                self._weights[why] = None
        return self._weights[why], why

    def tokenizer(self, res: Result):
        """The target's tokenizer, or a string saying why there is none."""
        from ..models import ModelUnavailable, load_tokenizer

        cfg = self.study_config(res)
        spec = cfg["models"]["target"] if cfg is not None else None
        recorded = res.data["models"]["target"]
        where, why = self.model_dir(spec, recorded)
        if where is None:
            return f"no tokenizer: {why}"
        if why not in self._tokenizers:
            try:
                self._tokenizers[why] = load_tokenizer({"name": recorded["name"], "path": str(where)})
            except (ModelUnavailable, OSError, ValueError) as exc:
                self._tokenizers[why] = f"tokenizer unavailable ({exc})"
        return self._tokenizers[why]

    def prompt_set_sha256(self, spec: dict, res: Result) -> tuple[str | None, str]:
        """SHA-256 of the prompt file the named loader makes now (None, why: not possible here)."""
        from ..prompts import DatasetUnavailable, select_prompts, write_prompt_set

        tok = self.tokenizer(res)
        if isinstance(tok, str):
            return None, tok
        key = canonical_hash([spec, id(tok)])
        if key not in self._prompt_sets:
            try:
                prompts = select_prompts(spec, tok)
            except (DatasetUnavailable, KeyError, ValueError) as exc:
                self._prompt_sets[key] = (None, f"loader '{spec.get('loader')}' cannot make the prompts here ({exc})")
            else:
                with tempfile.TemporaryDirectory() as tmp:  # the same bytes write_prompt_set writes
                    meta = write_prompt_set(Path(tmp) / "p.jsonl", prompts, spec, "check")
                self._prompt_sets[key] = (meta["sha256"], f"loader '{spec['loader']}'")
        return self._prompt_sets[key]


@lru_cache(maxsize=1)
def _current_code_version() -> str:
    from ..provenance import code_version  # imports torch: only when a result records a code version

    return code_version()


def rule_staleness(res: Result, inputs: Inputs, report: Report) -> None:
    f, d = res.path, res.data
    report.ran(f, "staleness")
    prov = d["provenance"]
    skipped = []
    if res.imported and not prov.get("job_sha256"):
        src = _resolve(prov.get("source_file"), inputs.root)
        if src is None or not src.exists():
            report.not_applicable(f, "staleness", f"imported result: source file {prov.get('source_file')!r} "
                                                  f"not found here, and no job hash to compare")
        elif prov.get("source_sha256") and file_sha256(src) != prov["source_sha256"]:
            report.error(f, "staleness", f"the source file {src} changed since the import (expected sha256 "
                                         f"{prov['source_sha256'][:16]}…, found {file_sha256(src)[:16]}…)")
        return

    job = _check_job(res, inputs, report)
    if job is None:
        skipped.append("job (no config for this study)" if not inputs.same_study(res) else "job")
    _check_prompt_file(res, job, inputs, report, skipped)
    for role in ("target", "draft"):
        recorded = d["models"].get(role)
        if not recorded:
            continue
        spec = (job.models.get(role) if job is not None else None)
        current, where = inputs.weights_sha256(spec, recorded)
        if current is None:
            skipped.append(f"models.{role} weights ({where})")
        elif recorded.get("weights_sha256") and current != recorded["weights_sha256"]:
            report.error(f, "staleness", f"models.{role}.weights_sha256 changed: the weights at {where} are not "
                                         f"the ones measured (expected {recorded['weights_sha256'][:16]}…, "
                                         f"found {current[:16]}…)")
    code = prov.get("code_version")
    if code and code != _current_code_version():
        report.warning(f, "staleness", f"provenance.code_version changed: the decodebench sources differ from "
                                       f"the ones that measured (expected {code[:16]}…, "
                                       f"found {_current_code_version()[:16]}…)")
    if skipped:
        report.not_applicable(f, "staleness", "not compared: " + "; ".join(skipped))


def _check_job(res: Result, inputs: Inputs, report: Report):
    d, cfg = res.data, inputs.study_config(res)
    if cfg is None:
        return None
    f, prov = res.path, d["provenance"]
    try:
        job = resolve_job(cfg, d["experiment"], d["dataset"]["name"], d["method"]["name"], root=inputs.root)
    except ConfigError as exc:
        report.error(f, "staleness", f"the job is no longer in the config ({exc})")
        return None
    except (KeyError, ValueError) as exc:  # e.g. a method id this checkout does not implement
        report.error(f, "staleness", f"the job cannot be resolved from the config "
                                     f"({type(exc).__name__}: {exc})")
        return None
    overrides = d["protocol"].get("overrides") or {}
    if overrides:
        report.error(f, "staleness", f"made with command-line overrides, not the config's job "
                                     f"(expected protocol.overrides {{}}, found {overrides})")
    if prov.get("job_sha256") and prov["job_sha256"] != job.sha256:
        recorded = prov.get("job")
        if recorded is not None:
            changes = _diff(recorded, json.loads(json.dumps(job.identity())))
            what = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        else:
            what = "the result records no provenance.job to name the field"
        report.error(f, "staleness", f"the job changed since the measurement: {what} (expected job_sha256 "
                                     f"{prov['job_sha256'][:16]}…, found {job.sha256[:16]}…)")
    return job


def _check_prompt_file(res: Result, job, inputs: Inputs, report: Report, skipped: list) -> None:
    from ..prompts import meta_path, prompt_file

    d = res.data["dataset"]
    path = (_resolve(str(prompt_file(job.resources_dir, job.study, job.dataset)), inputs.root) if job is not None
            else _resolve(d.get("prompt_file"), inputs.root))
    if path is None or not path.exists():
        skipped.append(f"prompt file ({path} not found)" if path else "prompt file (none recorded)")
        return
    meta = meta_path(path)
    current = json.loads(meta.read_text()).get("sha256") if meta.exists() else file_sha256(path)
    if d.get("prompt_sha256") and current != d["prompt_sha256"]:
        report.error(res.path, "staleness", f"dataset.prompt_sha256 changed: {path} is not the prompt set "
                                            f"measured (expected {d['prompt_sha256'][:16]}…, found {current[:16]}…)")


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    flat = re.sub(r"[^a-z0-9-]", "", text.lower())
    return any(w in flat for w in words)


def rule_dataset_provenance(res: Result, inputs: Inputs, report: Report, regenerate: bool = True) -> None:
    from ..prompts import SOURCE_KIND, meta_path

    f, d = res.path, res.data["dataset"]
    report.ran(f, "dataset-provenance")
    loader, kind, label, name = d["loader"], d["source_kind"], d["label"], d["name"]
    if kind in MARKED_KINDS and kind not in label.lower():
        report.error(f, "dataset-provenance", f"dataset.label does not say the source is {kind} "
                                              f"(expected '{kind}' in the label, found {label!r})")
    if not res.imported and loader in SOURCE_KIND and SOURCE_KIND[loader] != kind:
        report.error(f, "dataset-provenance", f"dataset.source_kind does not match loader '{loader}' "
                                              f"(expected {SOURCE_KIND[loader]!r}, found {kind!r})")
    for public, words in PUBLIC_DATASETS.items():
        for field_name, text in (("name", name), ("label", label)):
            if loader != public and _mentions(text, words):
                report.error(f, "dataset-provenance", f"dataset.{field_name} names {public} but the prompts "
                                                      f"come from loader '{loader}' (expected no claim of "
                                                      f"{public}, found {text!r})")
    if res.records is not None:
        foreign = [r["prompt_id"] for r in res.records if not r["prompt_id"].startswith(f"{loader}:")]
        if foreign:
            report.error(f, "dataset-provenance", f"{len(foreign)} record(s) have prompt ids from another "
                                                  f"loader (expected '{loader}:…', found {foreign[0]!r})")
    ppath = _resolve(d.get("prompt_file"), inputs.root)
    if ppath is not None and meta_path(ppath).exists():
        meta = json.loads(meta_path(ppath).read_text())
        for key, value in (("loader", loader), ("source_kind", kind)):
            if key in meta and meta[key] != value:
                report.error(f, "dataset-provenance", f"dataset.{key} disagrees with {meta_path(ppath)} "
                                                      f"(expected {meta[key]!r}, found {value!r})")
    if res.imported or not regenerate:
        return
    spec = ((res.data["provenance"].get("job") or {}).get("dataset_spec")
            or {"loader": loader, **(d.get("selection") or {})})
    if "num_prompts" not in spec or "prompt_tokens" not in spec:
        report.not_applicable(f, "dataset-provenance", "the selection is not recorded: prompts not re-made")
        return
    current, why = inputs.prompt_set_sha256(spec, res)
    if current is None:
        report.not_applicable(f, "dataset-provenance", f"prompts not re-made: {why}")
    elif current != d.get("prompt_sha256"):
        report.error(f, "dataset-provenance", f"dataset.prompt_sha256 is not what {why} makes with the recorded "
                                              f"selection (expected {current[:16]}…, found "
                                              f"{(d.get('prompt_sha256') or 'null')[:16]}…)")


# --- identity: a result's claims against its own path, job, config and prompt file ----------

def _path_claims(path: str) -> dict | None:
    """(study, experiment, dataset, method) from ``.../raw/<study>/<experiment>/<dataset>/<method>.json``."""
    parts = Path(path).parts
    if "raw" not in parts:
        return None
    tail = parts[len(parts) - 1 - parts[::-1].index("raw") + 1:]
    if len(tail) != 4 or not tail[3].endswith(".json"):
        return None
    return {"study": tail[0], "experiment": tail[1], "dataset": tail[2], "method": tail[3][:-len(".json")]}


def _prompt_ids(path: Path) -> list[str] | None:
    try:
        return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError):
        return None


def rule_identity(res: Result, inputs: Inputs, report: Report) -> None:
    """Is the result what it says it is, where it is? Its path (study, experiment, dataset,
    method configuration) against its contents; its method and parameters against the job it
    records (``provenance.job``); its kind against the study's config (a measured study takes no
    imported result, and an imported study no measured one); and its measurements against the
    protocol: every (prompt, repeat) measured once, ``protocol.repeats`` repeats of every prompt,
    and the prompts the first ``prompts_requested`` of the prompt file, in its order."""
    f, d = res.path, res.data
    report.ran(f, "identity")
    claims = _path_claims(f)
    if claims is not None:
        found = {"study": d["study"], "experiment": d["experiment"], "dataset": d["dataset"]["name"],
                 "method": d["method"]["name"]}
        for key in claims:
            if claims[key] != found[key]:
                report.error(f, "identity", f"the path says {key} {claims[key]!r}, the file says {found[key]!r} "
                                            f"(expected results/raw/<study>/<experiment>/<dataset>/<method>.json to "
                                            f"name what the file holds)")
    job = d["provenance"].get("job")
    if job:
        pairs = (("study", d["study"]), ("experiment", d["experiment"]), ("dataset", d["dataset"]["name"]),
                 ("method", d["method"]["id"]), ("params", d["method"]["params"]))
        for key, value in pairs:
            if key in job and job[key] != value:
                report.error(f, "identity", f"provenance.job.{key} is {job[key]!r} but the result says {value!r} "
                                            f"(expected the job that measured it)")
    if (cfg := inputs.study_config(res)) is not None:
        expected_kind = "imported" if cfg.get("import") else "measured"
        if d["kind"] != expected_kind:
            report.error(f, "identity", f"kind is {d['kind']!r} in a study whose config is {expected_kind} "
                                        f"(expected kind {expected_kind!r}; an imported result skips every "
                                        f"per-prompt rule)")
    if res.records is None:
        return
    seen: dict[tuple, int] = {}
    for r in res.records:
        seen[(r["prompt_index"], r["repeat"])] = seen.get((r["prompt_index"], r["repeat"]), 0) + 1
    twice = sorted(k for k, n in seen.items() if n > 1)
    if twice:
        report.error(f, "identity", f"(prompt, repeat) {twice[0]} measured {seen[twice[0]]} times (expected each "
                                    f"once; superseded attempts belong in 'remeasured')")
    repeats = d["protocol"].get("repeats") or 1
    by_prompt: dict[int, set] = {}
    for index, repeat in seen:
        by_prompt.setdefault(index, set()).add(repeat)
    short = sorted(i for i, reps in by_prompt.items() if reps != set(range(repeats)))
    if short:
        report.error(f, "identity", f"prompt {short[0]} has repeats {sorted(by_prompt[short[0]])} (expected "
                                    f"0..{repeats - 1}, protocol.repeats = {repeats})")
    requested = d["protocol"].get("prompts_requested")
    pfile = _resolve(d["dataset"].get("prompt_file"), inputs.root)
    # the prompt file as measured (a changed one is staleness's finding)
    ids = (_prompt_ids(pfile) if pfile is not None and pfile.exists()
           and file_sha256(pfile) == d["dataset"].get("prompt_sha256") else None)
    if pfile is not None and ids is not None and requested is not None:
        expected = ids[:requested]
        measured = {r["prompt_index"]: r["prompt_id"] for r in res.records}
        wrong = [i for i in range(len(expected)) if measured.get(i) != expected[i]]
        extra = sorted(set(measured) - set(range(len(expected))))
        if wrong or extra:
            i = (wrong or extra)[0]
            report.error(f, "identity", f"the measured prompts are not the first {requested} of {pfile.name}: "
                                        f"prompt index {i} (expected {expected[i] if i < len(expected) else 'none'!r}, "
                                        f"found {measured.get(i)!r})")
