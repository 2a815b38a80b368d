"""The registry of implemented methods: one ``register`` per method module."""

from ..method_params import (
                    DynaTreeParams,
                    EABParams,
                    HFAssistedParams,
                    LinearParams,
                    PLDParams,
                    TreeParams,
)
from . import MethodSpec, register

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
register(MethodSpec(id="eab_original", module="eab_original", params_cls=EABParams, greedy=False, multi_sample=True))
register(MethodSpec(id="eab_cow", module="eab_cow", params_cls=EABParams, greedy=False, multi_sample=True))
