# decodebench: regenerate the paper from measurements (docs/pipeline.md).
#
# Stages: prepare -> benchmark (or import) -> check -> aggregate -> render -> paper.
#
# Path scheme (written once, here; the functions in common.smk build these paths):
#   resources/models/{model}/                                  prepared weights (GGUF -> safetensors, distilled draft)
#   resources/prompts/{study}/{dataset}.jsonl                  prompt sets (+ .meta.json with SHA-256)
#   results/raw/{study}/{experiment}/{dataset}/{method}.json   one result per benchmark job
#   results/tables/{study}/check.txt                           the integrity check's report
#   results/tables/{study}/check_paper.txt, .verified.txt      the final check's report, its verification
#   results/tables/{study}/{experiment}.csv                    one long-format table per experiment
#   results/tables/{study}/setup.csv                           the setup section's values
#   paper/generated/{tables,figures}/..., numbers.tex, setup.tex, study.tex
#   results/MANIFEST.json                                      sha256 of every generated file and its inputs
#   paper/build/main.pdf                                       the paper
#   logs/{study}/...                                           one log per job
from snakemake.utils import min_version

min_version("8.20")

# No `configfile:` default here: common.smk loads config/config.yaml when no --configfile is
# given. A default would be merged with the --configfile(s) of remote jobs (SLURM and every
# other remote executor), which load no profile and so cannot replace it.


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/paper.smk"


# Small, quick jobs run where snakemake runs, also under a cluster profile: no queueing and
# status polling for seconds of work, and they need what compute nodes may lack (latexmk for
# the paper, the hub for the prompts). import_results is one too (benchmark.smk).
localrules:
    all,
    prepare_prompts,
    check_results,
    check,
    verify_check,
    aggregate,
    aggregate_setup,
    render,
    paper,


rule all:
    default_target: True
    input:
        PAPER_PDF,
