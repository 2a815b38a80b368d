"""Snakemake: aggregated tables -> paper/generated/ and results/MANIFEST.json (decodebench.render)."""
import sys
from pathlib import Path

from decodebench.config import load_config
from decodebench.render import render_all, write_manifest

sys.stderr = open(snakemake.log[0], "w")
cfg = load_config(snakemake.params.config_file)
write_manifest(render_all(cfg, Path(".")), snakemake.output.manifest)
