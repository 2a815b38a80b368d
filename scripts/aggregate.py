"""Snakemake: one experiment's result files (snakemake.input.results) -> its tidy table (decodebench.analysis)."""
import sys

from decodebench.analysis import aggregate_files, write_table
from decodebench.config import load_config
from decodebench.layout import imported, result_files

sys.stderr = open(snakemake.log[0], "w")
cfg = load_config(snakemake.params.config_file)
experiment = snakemake.wildcards.experiment
# An imported study's input is the import's output folder: its configured files are listed by layout.
files = result_files(cfg, experiment) if imported(cfg) else list(snakemake.input.results)
table = aggregate_files(cfg, experiment, files)
write_table(table, snakemake.output[0])
print(f"{snakemake.output[0]}: {len(table)} rows", file=sys.stderr)
