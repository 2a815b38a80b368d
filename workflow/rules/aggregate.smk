# One long-format table per experiment (decodebench.analysis): every per-dataset value, mean over
# datasets and headline pick, relative to the baseline.


rule aggregate:
    input:
        results=experiment_results,
        check=check_report(),
    output:
        "results/tables/{study}/{experiment}.csv",
    log:
        "logs/{study}/aggregate/{experiment}.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
        # the files to aggregate (an imported study's input is the import's output folder:
        # the configured subset of it)
        results=lambda wildcards: result_files(CFG, wildcards.experiment),
    script:
        "../../scripts/aggregate.py"


# The study's setup (models, device, library versions, commit, protocol) from every result
# file's provenance: the values of the paper's setup section (decodebench.study_setup).
rule aggregate_setup:
    input:
        results=all_results(),
        check=check_report(),
    output:
        SETUP_TABLE,
    log:
        f"logs/{STUDY}/aggregate/setup.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        results=study_result_files(CFG),
    script:
        "../../scripts/aggregate_setup.py"
