# One job per (experiment, dataset, method configuration); writes one result JSON atomically.


rule benchmark:
    output:
        "results/raw/{study}/{experiment}/{dataset}/{method}.json",
    log:
        "logs/{study}/benchmark/{experiment}/{dataset}/{method}.log",
    params:
        config_file=lambda wc: workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else "config/config.yaml",
    resources:
        gpu=1 if config["device"] == "cuda" else 0,
    shell:
        "decodebench run --config {params.config_file} --experiment {wildcards.experiment} "
        "--dataset {wildcards.dataset} --method {wildcards.method} --out {output} 2> {log}"
