"""The registry of implemented methods: one ``register`` per method module."""

from . import MethodSpec, register

register(MethodSpec(id="ar", module="ar", lossless=True))
from .linear import LinearParams  # noqa: E402
register(MethodSpec(id="linear", module="linear", params_cls=LinearParams, needs_draft=True, lossless=True))
from .hf_assisted import HFAssistedParams  # noqa: E402
register(MethodSpec(id="hf_assisted", module="hf_assisted", params_cls=HFAssistedParams, needs_draft=True,
                    lossless=True))
from .pld import PLDParams  # noqa: E402
register(MethodSpec(id="pld", module="pld", params_cls=PLDParams, lossless=True))
