"""The implemented methods: one ``MethodSpec`` per method module (the registry in
``decodebench.methods`` reads ``SPECS`` and ``ALIASES``)."""

from ..method_params import (
    ALIASES,
    DynaTreeParams,
    EABParams,
    HFAssistedParams,
    LinearParams,
    PLDParams,
    SharedPrefillParams,
    TreeParams,
)
from .base import MethodSpec

__all__ = ["ALIASES", "SPECS"]  # ALIASES: the ids before the stores were named (docs/multisample.md, "Method ids")

SPECS = (
    MethodSpec(id="ar", module="ar", lossless=True),
    MethodSpec(id="linear", module="linear", params_cls=LinearParams, needs_draft=True, lossless=True),
    MethodSpec(id="tree", module="tree", params_cls=TreeParams, needs_draft=True, lossless=True),
    MethodSpec(id="dynatree", module="dynatree", params_cls=DynaTreeParams, needs_draft=True, lossless=True),
    MethodSpec(id="hf_assisted", module="hf_assisted", params_cls=HFAssistedParams, needs_draft=True,
               lossless=True),
    MethodSpec(id="pld", module="pld", params_cls=PLDParams, lossless=True),
    MethodSpec(id="naive", module="naive", greedy=False, multi_sample=True),
    MethodSpec(id="naive_batched", module="naive_batched", greedy=False, multi_sample=True),
    MethodSpec(id="shared_prefill", module="shared_prefill", params_cls=SharedPrefillParams, greedy=False,
               multi_sample=True),
    MethodSpec(id="eab_deepcopy", module="eab_deepcopy", params_cls=EABParams, greedy=False, multi_sample=True),
    MethodSpec(id="eab_shared_prefix", module="eab_shared_prefix", params_cls=EABParams, greedy=False,
               multi_sample=True),
)
