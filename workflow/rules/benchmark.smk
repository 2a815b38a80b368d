# One job per (experiment, dataset, method configuration); writes one result JSON atomically.
# Imported studies (config `import:`) get their result files from `decodebench import` instead.

if not imported(CFG):

    rule benchmark:
        input:
            benchmark_inputs,
        output:
            "results/raw/{study}/{experiment}/{dataset}/{method}.json",
        log:
            "logs/{study}/benchmark/{experiment}/{dataset}/{method}.log",
        conda:
            "../envs/decodebench.yaml"
        params:
            config_file=CONFIG_FILE,
        # CPU: a job takes every core the run is given, so measurements never overlap.
        threads: workflow.cores if CFG["device"] == "cpu" else (CFG.get("threads") or 1)
        resources:
            gpu=1 if CFG["device"] == "cuda" else 0,
        shell:
            "decodebench run --quiet --config {params.config_file} --experiment {wildcards.experiment} "
            "--dataset {wildcards.dataset} --method {wildcards.method} --out {output} > {log} 2>&1"

else:

    rule import_results:
        input:
            sources=import_sources(),
            questions=import_questions(),
        output:
            directory(f"results/raw/{STUDY}"),
        log:
            f"logs/{STUDY}/import.log",
        conda:
            "../envs/decodebench.yaml"
        params:
            format=CFG["import"]["format"] if imported(CFG) else None,
            study=STUDY,
            config_file=CONFIG_FILE,
        shell:
            "decodebench import --format {params.format} {input.sources} --config {params.config_file} "
            "--out {output} --study {params.study} > {log} 2>&1"
