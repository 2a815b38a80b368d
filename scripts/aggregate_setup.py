"""Snakemake: every result file of the study (snakemake.params.results) -> its setup table
(decodebench.study_setup)."""
import sys

from decodebench.study_setup import setup_files, write_setup_table

sys.stderr = open(snakemake.log[0], "w")
table = setup_files(list(snakemake.params.results))
write_setup_table(table, snakemake.output[0])
print(f"{snakemake.output[0]}: {len(table)} values", file=sys.stderr)
