# decodebench: regenerate the paper from measurements.
#
# Path scheme (written once, here):
#   resources/models/{model}/                         prepared weights (GGUF -> safetensors, distilled draft)
#   resources/prompts/{study}/{dataset}.jsonl         prompt sets (+ .meta.json with SHA-256)
#   results/raw/{study}/{experiment}/{dataset}/{method}.json   one result per benchmark job
#   logs/{study}/...                                   one log per rule
from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    input:
        all_results(),
    default_target: True
