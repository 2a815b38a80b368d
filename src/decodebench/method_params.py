"""Every decoding method's parameters: one dataclass per method, its defaults the documented
defaults, ``validate()`` its ranges. Light (no torch), so that the config is checked before any
job runs, Snakemake's planning included (``config.check_method_params``).

The method modules use these classes (``decodebench.methods.specs`` lists each with its
method); ``PARAMS`` maps every implemented method id to its class.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class NoParams:
    """A method without parameters."""


@dataclass
class LinearParams:
    k: int = 4  # draft tokens proposed per round
    lookup: int = 0  # > 0: try prompt lookup with n-grams of this size down to 1 before the draft model
    lookup_tokens: int = 10  # at most this many looked-up tokens per round
    oracle_alpha: float | None = None  # oracle draft mode (methods.oracle): P(a draft is AR's token); None: off

    def validate(self) -> None:
        for name, least in (("k", 1), ("lookup", 0), ("lookup_tokens", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        check_oracle_alpha(self.oracle_alpha)


def check_oracle_alpha(value) -> None:
    """The oracle draft mode's probability (methods.oracle): None (off) or a number in [0, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"oracle_alpha must be null (off) or a number in [0, 1], got {value!r}")


@dataclass
class TreeParams:
    depth: int = 4
    branching: int = 2
    tau: float = 0.05
    max_nodes: int = 64
    oracle_alpha: float | None = None  # oracle draft mode (methods.oracle) on the first path; None: off
    padded: bool = False  # levels at their largest width, one host read per round (methods.tree.grow_tree)

    def validate(self) -> None:
        check_tree_limits(self.depth, self.max_nodes, self.tau, "depth")
        check_oracle_alpha(self.oracle_alpha)
        check_flag(self, "padded")
        if not (isinstance(self.branching, int) and self.branching >= 1):
            raise ValueError(f"branching must be an integer >= 1, got {self.branching!r}")


def check_flag(params: Any, name: str) -> None:
    if not isinstance(getattr(params, name), bool):
        raise ValueError(f"{name} must be true or false, got {getattr(params, name)!r}")


def check_tree_limits(depth: int, max_nodes: int, tau: float, depth_name: str) -> None:
    if not (isinstance(depth, int) and depth >= 1):
        raise ValueError(f"{depth_name} must be an integer >= 1, got {depth!r}")
    if not (isinstance(max_nodes, int) and max_nodes >= 1):
        raise ValueError(f"max_nodes must be an integer >= 1, got {max_nodes!r}")
    if not (isinstance(tau, (int, float)) and 0 <= tau < 1):
        raise ValueError(f"tau must be a number in [0, 1), got {tau!r}")


@dataclass
class DynaTreeParams:
    base_depth: int = 5
    max_depth: int = 8
    high_conf: float = 0.9
    low_conf: float = 0.4
    children_confident: int = 1
    children_mid: int = 2
    children_uncertain: int = 3
    tau: float = 0.05
    early_stop: float = 0.1
    deep_expand: float = 0.5
    max_nodes: int = 256
    window: int = 10
    target_acceptance: float = 0.7
    step: float = 0.05
    adaptive: bool = True
    history: bool = True
    oracle_alpha: float | None = None  # oracle draft mode (methods.oracle) on the first path; None: off
    padded: bool = False  # levels at their largest width, one host read per round (methods.tree.grow_tree)

    def validate(self) -> None:
        check_tree_limits(self.max_depth, self.max_nodes, self.tau, "max_depth")
        check_oracle_alpha(self.oracle_alpha)
        if not (isinstance(self.base_depth, int) and 1 <= self.base_depth <= self.max_depth):
            raise ValueError(f"base_depth must be an integer in [1, max_depth={self.max_depth}], "
                             f"got {self.base_depth!r}")
        if not 0 <= self.low_conf <= self.high_conf <= 1:
            raise ValueError(f"need 0 <= low_conf <= high_conf <= 1, got low_conf={self.low_conf!r}, "
                             f"high_conf={self.high_conf!r}")
        for name in ("children_confident", "children_mid", "children_uncertain", "window"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("early_stop", "deep_expand", "target_acceptance", "step"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        for name in ("adaptive", "history", "padded"):
            check_flag(self, name)


@dataclass
class EABParams:
    entropy_threshold: float = 0.25  # branch where normalised entropy H/log|V| exceeds this
    branch_factor: int = 3  # children of a branching path while the budget is empty
    max_paths: int | None = None  # live + finished path budget; None: the protocol's num_samples

    def validate(self) -> None:
        if not 0.0 <= self.entropy_threshold:
            raise ValueError(f"entropy_threshold must be >= 0, got {self.entropy_threshold}")
        if self.branch_factor < 2:
            raise ValueError(f"branch_factor must be >= 2, got {self.branch_factor}")
        if self.max_paths is not None and self.max_paths < 1:
            raise ValueError(f"max_paths must be >= 1, got {self.max_paths}")


STORES = ("deepcopy", "shared_prefix")  # decodebench.multisample.STORES: the multi-sample KV stores


@dataclass
class SharedPrefillParams:
    store: str = "shared_prefix"  # the KV store of the N paths (decodebench.multisample.STORES)

    def validate(self) -> None:
        if self.store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, got {self.store!r}")


SCHEDULES = ("constant", "heuristic")


@dataclass
class HFAssistedParams:
    num_assistant_tokens: int = 4
    schedule: str = "constant"
    confidence_threshold: float = 0.0

    def validate(self) -> None:
        k = self.num_assistant_tokens
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"num_assistant_tokens must be an integer >= 1, got {k!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0.0 <= float(self.confidence_threshold) < 1.0:
            raise ValueError(f"confidence_threshold must be within [0, 1), got {self.confidence_threshold!r}")


@dataclass
class PLDParams:
    num_tokens: int = 10
    max_matching_ngram_size: int = 2

    def validate(self) -> None:
        for name in ("num_tokens", "max_matching_ngram_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


PARAMS: dict[str, type] = {
    "ar": NoParams, "linear": LinearParams, "tree": TreeParams, "dynatree": DynaTreeParams,
    "hf_assisted": HFAssistedParams, "pld": PLDParams, "naive": NoParams, "naive_batched": NoParams,
    "shared_prefill": SharedPrefillParams, "eab_deepcopy": EABParams, "eab_shared_prefix": EABParams,
}
# the ids before the stores were named for what they do (the methods registry keeps them as aliases)
ALIASES = {"eab_original": "eab_deepcopy", "eab_cow": "eab_shared_prefix"}
PARAMS.update({alias: PARAMS[target] for alias, target in ALIASES.items()})

_TYPES = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str), "None": lambda v: v is None}


def _has_type(value, annotation: str) -> bool:
    """Whether value fits a field's annotation ("int", "float", "int | None"); an annotation
    other than these simple types is left to the class's validate()."""
    kinds = [k.strip() for k in annotation.split("|")]
    if not all(k in _TYPES for k in kinds):
        return True
    return any(_TYPES[k](value) for k in kinds)


def make_params(params_cls: type, method_id: str, params: dict) -> Any:
    """The params object of a method configuration: names, types and ranges checked
    (ValueError naming the parameter, what was expected and what was found)."""
    fields = dataclasses.fields(params_cls)
    names = {f.name for f in fields}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for method '{method_id}' "
                         f"(allowed: {', '.join(sorted(names)) or 'none'})")
    wrong = [f for f in fields if f.name in params and not _has_type(params[f.name], str(f.type))]
    obj = params_cls(**params)
    try:
        if hasattr(obj, "validate"):
            obj.validate()  # its ValueError names the range, the more useful message
    except TypeError:  # a comparison with a value of the wrong type: named below
        if not wrong:
            raise
    if wrong:
        f = wrong[0]
        raise ValueError(f"{f.name} must be of type {f.type}, got {params[f.name]!r} (method '{method_id}')")
    return obj


# Methods whose loops own a preallocated KV cache (kvcache.KVCache): method id -> the positions
# one forward may append beyond the committed tokens (a verification's drafts, a tree's nodes).
# The methods size their caches with it and the memory model (check rule memory-model) reads it.
def _linear_width(p: LinearParams) -> int:
    return max(p.k, p.lookup_tokens if p.lookup else 0) + 1


def tree_level_widths(p: TreeParams | DynaTreeParams) -> list[int]:
    """A padded tree's level widths, depth 1 first: level d has min(max_nodes, width of
    level d - 1 x the most children a node gets) slots (the root's level: 1), so it holds
    every node the level can have whatever the draft says."""
    if isinstance(p, TreeParams):
        depth, children = p.depth, p.branching
    else:  # dynatree: the deepest tree its history can reach, the widest fan-out of its rules
        depth = p.max_depth
        children = max(p.children_confident, p.children_mid, p.children_uncertain) if p.adaptive else p.children_mid
    widths = [1]
    for _ in range(depth):
        widths.append(min(p.max_nodes, widths[-1] * children))
    return widths[1:]


def tree_widths(p: TreeParams | DynaTreeParams) -> tuple[int, int]:
    """(target, draft): the most positions one round appends to each model's cache. The
    target verifies the root and at most max_nodes nodes; the draft is fed at most max_nodes
    nodes, or, padded, every slot of the levels below the last."""
    if not p.padded:
        return p.max_nodes + 1, p.max_nodes + 1
    widths = tree_level_widths(p)
    return min(p.max_nodes, sum(widths)) + 1, max(1, sum(widths[:-1]))


def _tree_width(p: TreeParams | DynaTreeParams) -> int:
    return tree_widths(p)[0]


CACHE_WIDTH = {"ar": lambda p: 0, "linear": _linear_width, "tree": _tree_width, "dynatree": _tree_width}


def cache_width(method_id: str, params: Any) -> int | None:
    """Positions beyond the committed tokens a method's preallocated KV cache holds (its
    capacity is prompt + max_new_tokens + this); None: the method keeps a growing cache
    (transformers' loops, multi-sample stores). `params`: the params object or a dict."""
    width = CACHE_WIDTH.get(method_id)
    if width is None:
        return None
    if isinstance(params, dict):
        params = PARAMS[method_id](**params)
    return width(params)


def padded_tree(method_id: str, params: Any) -> TreeParams | DynaTreeParams | None:
    """The params of a tree method with padded levels (their caches and forwards are wider),
    else None. `params`: the params object or a dict."""
    if method_id not in ("tree", "dynatree"):
        return None
    if isinstance(params, dict):
        params = PARAMS[method_id](**params)
    return params if params.padded else None


def resolve_params(method_id: str, params: dict) -> dict:
    """Every parameter of an implemented method with defaults filled in (ValueError for an
    unknown method id)."""
    if method_id not in PARAMS:
        raise ValueError(f"unknown method '{method_id}' (implemented: {', '.join(sorted(PARAMS))})")
    return dataclasses.asdict(make_params(PARAMS[method_id], method_id, params))
