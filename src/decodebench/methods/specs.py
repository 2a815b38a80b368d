"""The registry of implemented methods: one ``register`` per method module."""

from . import MethodSpec, register

register(MethodSpec(id="ar", module="ar", lossless=True))
from .tree import TreeParams  # noqa: E402
register(MethodSpec(id="tree", module="tree", params_cls=TreeParams, needs_draft=True, lossless=True))
from .dynatree import DynaTreeParams  # noqa: E402
register(MethodSpec(id="dynatree", module="dynatree", params_cls=DynaTreeParams, needs_draft=True, lossless=True))
