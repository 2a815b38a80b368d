"""The registry of implemented methods: one ``register`` per method module."""

from . import MethodSpec, register
from .eab import EABParams

register(MethodSpec(id="ar", module="ar", lossless=True))
register(MethodSpec(id="naive", module="naive", greedy=False, multi_sample=True))
register(MethodSpec(id="naive_batched", module="naive_batched", greedy=False, multi_sample=True))
register(MethodSpec(id="eab_original", module="eab_original", params_cls=EABParams, greedy=False, multi_sample=True))
register(MethodSpec(id="eab_cow", module="eab_cow", params_cls=EABParams, greedy=False, multi_sample=True))
