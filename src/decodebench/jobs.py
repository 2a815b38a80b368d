"""A benchmark job: one method configuration of a study on one dataset, resolved from the config
(defaults filled in, a tuned configuration's parameters read from the tuning picks). Its
``identity()`` is hashed into every result (``provenance.job_sha256``), so `check` tells a result
made by another job (staleness) and names the field that changed.

    job = resolve_job(cfg, "main", "gutenberg", "linear")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_PROTOCOL, ConfigError, canonical_hash, config_label
from .tuning import tuned_params


@dataclass
class Job:
    study: str
    experiment: str
    dataset: str
    method_name: str
    method_id: str
    params: dict
    protocol: dict
    dataset_spec: dict
    models: dict
    device: str
    dtype: str
    threads: int | None
    seed: int
    resources_dir: Path
    label: str | None = None
    overrides: dict = field(default_factory=dict)
    tuning: dict | None = None  # a tuned configuration: decodebench.tuning.tuned_params

    def identity(self) -> dict:
        """What the result depends on; hashed into job_sha256 (staleness)."""
        out = {"study": self.study, "experiment": self.experiment, "dataset": self.dataset,
               "dataset_spec": self.dataset_spec, "method": self.method_id, "params": self.params,
               "protocol": self.protocol, "models": self.models, "device": self.device,
               "dtype": self.dtype, "threads": self.threads, "seed": self.seed}
        if self.tuning is not None:  # only then: untuned jobs keep their hashes
            out["tuning"] = self.tuning
        return out

    @property
    def sha256(self) -> str:
        return canonical_hash(self.identity())


def resolve_job(cfg: dict, experiment: str, dataset: str, method: str,
                limit: int | None = None, max_new_tokens: int | None = None, root: str | Path = ".") -> Job:
    """The job of one method configuration; a ``tuned`` one reads the tuning picks under `root`."""
    from .methods import get_method  # late import: methods import torch

    where = config_label(cfg)
    exps = cfg["experiments"]
    if experiment not in exps:
        raise ConfigError(f"{where}: no experiment '{experiment}' (defined: {', '.join(sorted(exps))})")
    exp = exps[experiment]
    if dataset not in exp["datasets"]:
        raise ConfigError(f"{where}: experiment '{experiment}' has no dataset '{dataset}' "
                          f"(it has: {', '.join(exp['datasets'])})")
    if method not in exp["methods"]:
        raise ConfigError(f"{where}: experiment '{experiment}' has no method '{method}' "
                          f"(it has: {', '.join(exp['methods'])})")
    mspec = exp["methods"][method]
    protocol = {**DEFAULT_PROTOCOL, **cfg.get("protocol", {}), **exp.get("protocol", {}),
                **mspec.get("protocol", {})}
    overrides = {}
    if max_new_tokens is not None:
        protocol["max_new_tokens"] = max_new_tokens
        overrides["max_new_tokens"] = max_new_tokens
    dspec = dict(cfg["datasets"][dataset])
    dspec.setdefault("seed", cfg.get("seed", 0))
    dspec.setdefault("min_tokens", dspec["prompt_tokens"])
    dspec.setdefault("chat_template", False)
    if limit is not None:
        overrides["limit"] = limit
    spec = get_method(mspec["method"])
    given, tuning = mspec.get("params", {}), None
    if mspec.get("tuned"):
        given, tuning = tuned_params(cfg, spec.id, root)
    try:
        params = spec.resolve_params(given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: experiments.{experiment}.methods.{method}.params: {exc}") from None
    models = {"target": cfg["models"]["target"]}
    if spec.needs_draft:
        if "draft" not in cfg["models"]:
            raise ConfigError(f"{where}: method '{method}' ({spec.id}) needs models.draft, which is not set")
        models["draft"] = cfg["models"]["draft"]
    return Job(study=cfg["study"], experiment=experiment, dataset=dataset, method_name=method,
               method_id=spec.id, params=params, protocol=protocol, dataset_spec=dspec, models=models,
               device=cfg["device"], dtype=cfg["dtype"], threads=cfg.get("threads"),
               seed=cfg.get("seed", 0), resources_dir=Path(cfg.get("resources_dir", "resources")),
               label=mspec.get("label"), overrides=overrides, tuning=tuning)
