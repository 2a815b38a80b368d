"""Snakemake: one experiment's result files (snakemake.params.results, the rule's inputs or, for
an imported study, the configured files of its import folder) -> its long-format table
(decodebench.analysis)."""
import sys

from decodebench.analysis import aggregate_files, write_table
from decodebench.config import load_config

sys.stderr = open(snakemake.log[0], "w")
cfg = load_config(snakemake.params.config_file)
table = aggregate_files(cfg, snakemake.wildcards.experiment, list(snakemake.params.results))
write_table(table, snakemake.output[0])
print(f"{snakemake.output[0]}: {len(table)} rows", file=sys.stderr)
