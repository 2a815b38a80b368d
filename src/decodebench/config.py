"""Study configs: loading, validation and resolving one benchmark job.

A job is (experiment, dataset, method configuration). ``resolve_job`` merges the study's
protocol, the experiment's and the method's (later wins) and returns everything the run
needs; its hash (``job_sha256``) is what staleness is judged by.

Shorthands expanded here, so that Snakemake and ``decodebench run`` see the same jobs:
``prompt_lengths: [64, 256]`` adds dataset variants ``<dataset>_p64``, ...;
``generation_lengths: [100, 500]`` adds method variants ``<method>_t100``, ...;
``{method: eab, cache: deepcopy | shared_prefix | both}`` is ``eab_deepcopy`` /
``eab_shared_prefix`` / both side by side (as ``<name>_deepcopy`` and ``<name>_shared_prefix``);
the old cache names ``original`` and ``cow`` are aliases of ``deepcopy`` and ``shared_prefix``.
``sweep: {tree: {depth: [2, 4], tau: [0.05]}}`` adds one method configuration per point of
the grid, named ``tree_d2_tau0.05``, ... (see ``sweep_methods``).
``vary: {num_samples: [2, 8], entropy_threshold: [0.1]}`` varies one setting at a time around
the experiment's own: ``<method>_n2``, ... (see ``vary_methods``); a variant of a protocol
setting is compared with the baseline's variant of the same setting.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .kinds import kind_problems


def schema_defaults(*path: str) -> dict:
    """``{key: default}`` of the config schema's object at `path` (``$defs`` or top-level
    properties): defaults are written once, in the schema's ``default:`` fields."""
    node = config_schema()
    node = node["$defs"][path[0]] if path[0] in node.get("$defs", {}) else node["properties"][path[0]]
    for key in path[1:]:
        node = node["properties"][key]
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v}


# Rules whose findings are about this repository's own numbers and paper, never third-party
# data: a study cannot acknowledge them (docs/check.md, "acknowledged").
NOT_ACKNOWLEDGEABLE = {"measured": ("lossless", "manuscript", "artifacts", "tuning", "gate"),
                       "imported": ("manuscript", "artifacts", "gate")}


class ConfigError(ValueError):
    """A config that does not validate, or a job it does not contain."""


@lru_cache(maxsize=1)
def config_schema() -> dict:
    return yaml.safe_load(resources.files("decodebench").joinpath("schemas/config.schema.yaml").read_text())


DEFAULT_PROTOCOL = schema_defaults("protocol")
CHECK_DEFAULTS = schema_defaults("check")  # cv_threshold (rule baseline-stability), run_tolerance, remeasure
DEFAULT_CV_THRESHOLD = CHECK_DEFAULTS["cv_threshold"]


def canonical_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1}; expected each key once "
                                f"in a mapping)", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A config file's YAML, with duplicate keys refused (ConfigError naming file and line)."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None


def _is_integer(checker, instance) -> bool:
    """JSON Schema's integer without its 1.0 == 1: `max_new_tokens: 64.0` is not an integer here."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


def validate_config(cfg: Any, source: str | Path = "<config>") -> None:
    validator = _Validator(config_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = []
    for e in errors:
        where = ".".join(map(str, e.absolute_path)) or "(top level)"
        if "propertyNames" in e.relative_schema_path:
            lines.append(f"{where}: key {e.instance!r} is not a safe name (expected {e.schema.get('description')}; "
                         f"it becomes part of file paths and Snakemake wildcards)")
        elif e.validator == "additionalProperties":
            lines.append(f"{where}: {e.message} (check the spelling; allowed keys: "
                         f"{', '.join(sorted(e.schema.get('properties', {})))})")
        else:
            lines.append(f"{where}: {e.message}")
    raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(lines))


class Config(dict[str, Any]):
    """A checked, expanded config: exactly the YAML's keys (after the shorthands' expansion), and
    where it came from as attributes, never as keys: ``path`` (the file) and ``sha256`` (of the
    expanded config, recorded in every result as ``provenance.config_sha256``). A plain dict
    works wherever a Config does; it names itself ``<config>`` in messages."""

    def __init__(self, data=(), path: str | Path | None = None):
        super().__init__(data)
        self.path = None if path is None else str(path)
        self.sha256 = canonical_hash(dict(self))


def config_path(cfg: dict) -> str | None:
    """The file a config was loaded from (None for a config built in code)."""
    return getattr(cfg, "path", None)


def config_sha256(cfg: dict) -> str | None:
    return getattr(cfg, "sha256", None)


def config_label(cfg: dict) -> str:
    """How messages name a config: its file, or ``<config>``."""
    return config_path(cfg) or "<config>"


def load_config(path: str | Path) -> Config:
    return Config(check_config(read_yaml(path), path), path)


def check_config(cfg: Any, source: str | Path = "<config>") -> dict:
    """Everything about a config that can be wrong before any job runs, checked at once (for
    ``load_config`` and for Snakemake's planning, so ``snakemake -n`` fails with the error): the
    schema (safe names, integers that are ints), references, acknowledgements, labels LaTeX can
    typeset, and every method configuration's parameters. Returns the expanded config."""
    validate_config(cfg, source)
    cfg = expand_config(cfg, source)
    check_references(cfg, source)
    check_acknowledgements(cfg, source)
    check_labels(cfg, source)
    check_method_params(cfg, source)
    if problems := kind_problems(cfg["experiments"]):
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))
    return cfg


def check_acknowledgements(cfg: dict, source: str | Path) -> None:
    """A study acknowledges only findings about data it cannot fix (NOT_ACKNOWLEDGEABLE)."""
    kind = "imported" if cfg.get("import") else "measured"
    problems = [f"check.acknowledge[{i}].rule: '{entry['rule']}' cannot be acknowledged in a {kind} study "
                f"(expected a rule about third-party data, not one of {', '.join(NOT_ACKNOWLEDGEABLE[kind])}: "
                f"fix what it reports instead)"
                for i, entry in enumerate((cfg.get("check") or {}).get("acknowledge") or [])
                if entry["rule"] in NOT_ACKNOWLEDGEABLE[kind]]
    if problems:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))


def _latin1(text: str) -> bool:
    return all(0x20 <= ord(c) <= 0x7E or 0xA0 <= ord(c) <= 0xFF for c in text)


def check_labels(cfg: dict, source: str | Path) -> None:
    """Labels go into the paper's tables: printable Latin-1 only (what pdflatex's default
    setup typesets); `≥`, CJK or an emoji would fail only inside latexmk."""
    fields = [(f"datasets.{d}.label", spec.get("label")) for d, spec in cfg.get("datasets", {}).items()]
    fields += [(f"experiments.{e}.methods.{m}.label", spec.get("label"))
               for e, exp in cfg["experiments"].items() for m, spec in exp["methods"].items()]
    problems = []
    for where, text in fields:
        if text is not None and not _latin1(text):
            bad = next(c for c in text if not _latin1(c))
            problems.append(f"{where}: {text!r} has {bad!r} (U+{ord(bad):04X}), which the paper's LaTeX setup "
                            f"cannot typeset (expected printable Latin-1 characters; write e.g. '>=' for '≥')")
    if problems:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))


def check_method_params(cfg: dict, source: str | Path) -> None:
    """Every method configuration's parameters against what its method declares (names,
    types, ranges), so that `k: -3` fails when the config is read, not when the job runs.
    Imported studies name methods decodebench does not implement: not checked."""
    if cfg.get("import"):
        return
    from .method_params import resolve_params  # no torch: Snakemake plans with this

    problems = []
    for e, exp in cfg["experiments"].items():
        for m, mspec in exp["methods"].items():
            try:
                resolve_params(mspec["method"], mspec.get("params") or {})
            except (TypeError, ValueError) as exc:
                problems.append(f"experiments.{e}.methods.{m}.params: {exc}")
    if problems:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))


def _short(param: str) -> str:
    """A parameter's name in a sweep variant: names of up to 3 letters as they are (k, tau),
    longer ones by the initials of their words (depth -> d, max_branching -> mb)."""
    return param if len(param) <= 3 else "".join(w[0] for w in param.split("_") if w)


def sweep_methods(sweep: dict) -> dict:
    """Method configurations for every point of each method's parameter grid.

    ``{tree: {depth: [4], branching: [2, 3], tau: [0.05]}}`` ->
    ``{"tree_d4_b2_tau0.05": {"method": "tree", "params": {"depth": 4, "branching": 2, "tau": 0.05}},
    "tree_d4_b3_tau0.05": ...}`` (grid order: first parameter slowest)."""
    methods = {}
    for method_id, grid in sweep.items():
        names = list(grid)
        shorts = [_short(n) for n in names]
        if len(set(shorts)) != len(shorts):
            raise ConfigError(f"sweep.{method_id}: parameters {names} abbreviate to the same names {shorts}")
        for values in itertools.product(*(grid[n] for n in names)):
            variant = "_".join([method_id] + [f"{s}{v}" for s, v in zip(shorts, values)])
            methods[variant] = {"method": method_id, "params": dict(zip(names, values))}
    return methods


TUNE_EXPERIMENT = "tune"


def tune_experiment(tune: dict) -> dict:
    """The tuning stage (``tune:``) as an experiment: AR and every grid point on the tuning set."""
    return {"description": tune.get("description", "tuning: every grid point against AR on the tuning prompts"),
            "baseline": "ar", "datasets": [tune["dataset"]], "protocol": copy.deepcopy(tune.get("protocol", {})),
            "methods": {"ar": {"method": "ar", "label": "AR"}}, "sweep": copy.deepcopy(tune["grid"]),
            "kind": "generic"}


def expand_config(cfg: dict, source: str | Path = "<config>") -> dict:
    """Expand the tune / sweep / eab cache / vary / prompt_lengths / generation_lengths shorthands into named variants."""
    cfg = copy.deepcopy(cfg)
    if "tune" in cfg:
        if TUNE_EXPERIMENT in cfg["experiments"]:
            raise ConfigError(f"{source}: experiments.{TUNE_EXPERIMENT}: the name is taken by the tuning stage "
                              "(config tune:); rename the experiment")
        cfg["experiments"] = {TUNE_EXPERIMENT: tune_experiment(cfg["tune"]), **cfg["experiments"]}
    for ename, exp in cfg["experiments"].items():
        exp["methods"] = _expand_eab_cache(exp["methods"], f"{source}: experiments.{ename}.methods")
        if "sweep" in exp:
            for name, spec in sweep_methods(exp["sweep"]).items():
                if name in exp["methods"]:
                    raise ConfigError(f"experiments.{ename}.sweep: method configuration '{name}' "
                                      f"is also listed under methods")
                exp["methods"][name] = spec
        if "vary" in exp:
            exp["methods"] = vary_methods(cfg, exp, f"{source}: experiments.{ename}")
        if "prompt_lengths" in exp:
            variants = []
            for name in exp["datasets"]:
                for length in exp["prompt_lengths"]:
                    variant = f"{name}_p{length}"
                    cfg["datasets"][variant] = {**cfg["datasets"][name], "prompt_tokens": length,
                                                "min_tokens": max(length, cfg["datasets"][name].get("min_tokens", 0))}
                    variants.append(variant)
            exp["datasets"] = variants
        if "generation_lengths" in exp:
            methods = {}
            for name, spec in exp["methods"].items():
                for length in exp["generation_lengths"]:
                    variant = copy.deepcopy(spec)
                    variant.setdefault("protocol", {})["max_new_tokens"] = length
                    methods[f"{name}_t{length}"] = variant
            exp["methods"] = methods  # the baseline keeps its base name; see baseline_for
    return cfg


# Protocol settings an experiment's `vary` may vary (each variant's baseline is the baseline's
# variant of the same setting), with their short names in variant names and labels in tables.
VARY_PROTOCOL = {"num_samples": ("n", "N"), "temperature": ("temp", "T"), "max_new_tokens": ("t", "new tokens")}


def vary_methods(cfg: dict, exp: dict, where: str) -> dict:
    """The experiment's method configurations and, for each setting of ``vary`` (in its order),
    each configuration at each of the setting's values, one setting at a time: a star around the
    experiment's own settings, not a grid.

    ``vary: {num_samples: [2, 4, 8], entropy_threshold: [0.1, 0.5]}`` with methods ``sp``
    (shared_prefill, the baseline) and ``eab`` (N = 4, threshold 0.25) gives ``sp``, ``eab``,
    ``sp_n2``, ``eab_n2``, ``sp_n8``, ``eab_n8``, ``eab_et0.1``, ``eab_et0.5``:

    - a protocol setting (``VARY_PROTOCOL``: num_samples, temperature, max_new_tokens) varies every
      configuration, the baseline's too, and each variant's ``baseline`` is the baseline's variant
      of the same value (``eab_n2`` -> ``sp_n2``);
    - any other name is a method parameter: it varies the configurations whose method declares it
      (``method_params``), each compared with the experiment's baseline;
    - a value equal to a configuration's own setting is that configuration (no duplicate run).

    Each variant records ``vary: {of, dimension, value}`` (``analysis`` shows it), and its label is
    the configuration's with the setting appended (``EAB (N=2)``)."""
    from .method_params import PARAMS, resolve_params  # light: no torch

    if "generation_lengths" in exp:
        raise ConfigError(f"{where}: vary and generation_lengths do not combine (vary max_new_tokens instead)")
    base = exp["methods"]
    out = copy.deepcopy(base)
    for dim, values in exp["vary"].items():
        short, shown = VARY_PROTOCOL.get(dim, (_short(dim), dim.replace("_", " ")))
        protocol_setting = dim in VARY_PROTOCOL
        declared = [m for m, spec in base.items() if protocol_setting or (
            spec["method"] in PARAMS and dim in resolve_params(spec["method"], {}))]
        if not declared:
            raise ConfigError(f"{where}.vary.{dim}: neither a protocol setting ({', '.join(VARY_PROTOCOL)}) nor a "
                              f"parameter of any of the experiment's methods ({', '.join(base)})")

        def current(spec: dict, dim=dim, protocol_setting=protocol_setting):
            if protocol_setting:
                return {**DEFAULT_PROTOCOL, **cfg.get("protocol", {}), **exp.get("protocol", {}),
                        **spec.get("protocol", {})}[dim]
            return resolve_params(spec["method"], spec.get("params") or {})[dim]

        for value in values:
            for name in declared:
                spec = base[name]
                if value == current(spec):
                    continue
                variant = f"{name}_{short}{value}"
                if variant in out:
                    raise ConfigError(f"{where}.vary.{dim}: method configuration '{variant}' exists already")
                spec = copy.deepcopy(spec)
                spec.setdefault("protocol" if protocol_setting else "params", {})[dim] = value
                if "label" in spec:
                    spec["label"] = f"{spec['label']} ({shown}={value})"
                if protocol_setting and exp["baseline"] in base:  # the baseline at the same value
                    same = value == current(base[exp["baseline"]])
                    spec["baseline"] = exp["baseline"] if same else f"{exp['baseline']}_{short}{value}"
                spec["vary"] = {"of": name, "dimension": dim, "value": value}
                out[variant] = spec
    return out


def baseline_for(exp: dict, method: str) -> str:
    """The baseline configuration a method configuration is compared with: its own (a variant of a
    protocol setting under ``vary``), the baseline's variant of the same budget
    (``<baseline>_t<T>``) under ``generation_lengths``, or the experiment's baseline."""
    own = (exp.get("methods", {}).get(method) or {}).get("baseline")
    if own:
        return own
    if "generation_lengths" in exp and "_t" in method:
        return f"{exp['baseline']}_t{method.rsplit('_t', 1)[1]}"
    return exp["baseline"]


EAB_CACHES = ("deepcopy", "shared_prefix")
EAB_CACHE_ALIASES = {"original": "deepcopy", "cow": "shared_prefix"}  # the names before the stores were renamed
EAB_CACHE_LABELS = {"deepcopy": "deep copy", "shared_prefix": "shared prefix"}


def _expand_eab_cache(methods: dict, where: str) -> dict:
    """``{method: eab, cache: both}`` -> ``<name>_deepcopy`` and ``<name>_shared_prefix`` entries."""
    out = {}
    for name, spec in methods.items():
        if spec["method"] != "eab" and "cache" not in spec:
            out[name] = spec
            continue
        if spec["method"] != "eab" or "cache" not in spec:
            raise ConfigError(f"{where}.{name}: 'cache' goes with method 'eab' and method 'eab' needs "
                              f"'cache' (deepcopy, shared_prefix or both); got method '{spec['method']}'"
                              f"{', cache ' + repr(spec['cache']) if 'cache' in spec else ' without cache'}")
        cache = EAB_CACHE_ALIASES.get(spec["cache"], spec["cache"])
        caches = list(EAB_CACHES) if cache == "both" else [cache]
        for cache in caches:
            variant = {k: copy.deepcopy(v) for k, v in spec.items() if k != "cache"}
            variant["method"] = f"eab_{cache}"
            if len(caches) > 1 and "label" in variant:
                variant["label"] = f"{variant['label']} ({EAB_CACHE_LABELS[cache]})"
            out[f"{name}_{cache}" if len(caches) > 1 else name] = variant
    return out


def check_references(cfg: dict, source: str | Path) -> None:
    problems = []
    for ename, exp in cfg["experiments"].items():
        for d in exp["datasets"]:
            if d not in cfg["datasets"]:
                problems.append(f"experiments.{ename}.datasets: unknown dataset '{d}' "
                                f"(defined: {', '.join(sorted(cfg['datasets']))})")
        bases = {d.rsplit("_p", 1)[0] if "prompt_lengths" in exp else d for d in exp["datasets"]}
        for m, spec in exp["methods"].items():
            if unknown := sorted(set(spec.get("datasets") or []) - bases):
                problems.append(f"experiments.{ename}.methods.{m}.datasets: {', '.join(unknown)} not among the "
                                f"experiment's datasets ({', '.join(sorted(bases))})")
            if "pairing" in (spec.get("protocol") or {}):
                problems.append(f"experiments.{ename}.methods.{m}.protocol.pairing: pairing is set per study or "
                                f"per experiment (it decides how the experiment's jobs are grouped), not per method")
            if spec.get("tuned"):
                if "params" in spec:
                    problems.append(f"experiments.{ename}.methods.{m}: 'tuned: true' takes its params from the "
                                    "tuning stage; remove 'params' (or 'tuned')")
                if spec["method"] not in (cfg.get("tune") or {}).get("grid", {}):
                    problems.append(f"experiments.{ename}.methods.{m}: tuned, but the config's tune.grid has no "
                                    f"'{spec['method']}' (tuned ids: {', '.join(sorted((cfg.get('tune') or {}).get('grid', {}))) or 'none'})")
                if ename == TUNE_EXPERIMENT:
                    problems.append(f"experiments.{ename}.methods.{m}: the tuning stage cannot use its own picks")
        base_names = {m.rsplit("_t", 1)[0] if "generation_lengths" in exp else m for m in exp["methods"]}
        if exp["baseline"] is None:
            if not cfg.get("import"):
                problems.append(f"experiments.{ename}.baseline: null is allowed only in an imported study "
                                "(a source without a baseline run)")
        elif exp["baseline"] not in base_names:
            problems.append(f"experiments.{ename}.baseline: '{exp['baseline']}' is not one of its methods")
        for m, spec in exp["methods"].items():
            if spec.get("baseline") and spec["baseline"] not in exp["methods"]:
                problems.append(f"experiments.{ename}.methods.{m}: its baseline '{spec['baseline']}' is not one of "
                                f"the experiment's methods")
    tune = cfg.get("tune")
    if tune:
        if tune["dataset"] not in cfg["datasets"]:
            problems.append(f"tune.dataset: unknown dataset '{tune['dataset']}' (defined: {', '.join(sorted(cfg['datasets']))})")
        reported = {d for e, exp in cfg["experiments"].items() if e != TUNE_EXPERIMENT
                    and any(spec.get("tuned") for spec in exp["methods"].values()) for d in exp["datasets"]}
        if tune["dataset"] in reported:
            problems.append(f"tune.dataset: '{tune['dataset']}' is also reported by an experiment with tuned methods; "
                            "tune on a disjoint prompt set (e.g. the same loader with skip: <num_prompts>)")
    if problems:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))
