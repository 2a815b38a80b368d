"""Snakemake: one experiment's result files -> its tidy table (decodebench.analysis)."""
import sys

from decodebench.analysis import aggregate_files, write_table
from decodebench.config import load_config
from decodebench.layout import result_files

sys.stderr = open(snakemake.log[0], "w")
cfg = load_config(snakemake.params.config_file)
experiment = snakemake.wildcards.experiment
table = aggregate_files(cfg, experiment, result_files(cfg, experiment))
write_table(table, snakemake.output[0])
print(f"{snakemake.output[0]}: {len(table)} rows", file=sys.stderr)
