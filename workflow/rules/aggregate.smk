# One tidy table per experiment (pandas): mean +- sample std over prompts, relative to the baseline.


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
    script:
        "../../scripts/aggregate.py"
