"""The registry of implemented methods: one ``register`` per method module."""

from . import MethodSpec, register

register(MethodSpec(id="ar", module="ar", lossless=True))
