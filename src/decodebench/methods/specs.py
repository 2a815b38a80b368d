"""The registry of implemented methods: one ``register`` per method module."""

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
from . import MethodSpec, register, register_alias

register(MethodSpec(id="ar", module="ar", lossless=True))
register(MethodSpec(id="linear", module="linear", params_cls=LinearParams, needs_draft=True, lossless=True))
register(MethodSpec(id="tree", module="tree", params_cls=TreeParams, needs_draft=True, lossless=True))
register(MethodSpec(id="dynatree", module="dynatree", params_cls=DynaTreeParams, needs_draft=True,
                    lossless=True))
register(MethodSpec(id="hf_assisted", module="hf_assisted", params_cls=HFAssistedParams, needs_draft=True,
                    lossless=True))
register(MethodSpec(id="pld", module="pld", params_cls=PLDParams, lossless=True))

register(MethodSpec(id="naive", module="naive", greedy=False, multi_sample=True))
register(MethodSpec(id="naive_batched", module="naive_batched", greedy=False, multi_sample=True))
register(MethodSpec(id="shared_prefill", module="shared_prefill", params_cls=SharedPrefillParams, greedy=False,
                    multi_sample=True))
register(MethodSpec(id="eab_deepcopy", module="eab_deepcopy", params_cls=EABParams, greedy=False,
                    multi_sample=True))
register(MethodSpec(id="eab_shared_prefix", module="eab_shared_prefix", params_cls=EABParams, greedy=False,
                    multi_sample=True))
# The ids before the stores were named for what they do (docs/multisample.md, "Method ids").
for _alias, _target in ALIASES.items():
    register_alias(_alias, _target)
