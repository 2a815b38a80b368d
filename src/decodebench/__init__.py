"""decodebench: measured, traceable benchmarks of LLM decoding methods."""

__version__ = "0.1.0"
