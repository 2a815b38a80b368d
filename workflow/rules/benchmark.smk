# Benchmark jobs (docs/pipeline.md, "Measurement protocol"); each writes one result JSON per
# method configuration, atomically.
#   protocol.pairing: interleaved (default): one job per (experiment, dataset), rule
#     benchmark_<experiment>_<dataset>, measures every configuration of the experiment in one
#     process, interleaved prompt by prompt (paired measurement; several outputs).
#   protocol.pairing: per_method: one job per configuration, rule benchmark (clusters that give
#     each job its own GPU).
#   tune_picks: the tuning stage's picks (config `tune:`), an input of every benchmark job of an
#     experiment with `tuned: true` configurations.
# Imported studies (config `import:`) get their result files from `decodebench import` instead.

if not imported(CFG):

    for group in PAIRED_GROUPS:

        rule:
            name:
                group["name"]
            input:
                benchmark_inputs(group["dataset"]) + tuned_input(group["experiment"]),
            output:
                group["outputs"],
            log:
                f"logs/{STUDY}/benchmark/{group['experiment']}/{group['dataset']}.log",
            conda:
                "../envs/decodebench.yaml"
            threads: BENCHMARK_THREADS
            resources:
                **device_resources(exclusive=True),
            params:
                config_file=CONFIG_FILE,
                args=run_arguments(group),
            shell:
                "decodebench run --quiet --config {params.config_file:q} {params.args} > {log:q} 2>&1"

    if PER_METHOD_EXPERIMENTS:

        rule benchmark:
            input:
                lambda wildcards: benchmark_inputs(wildcards.dataset) + tuned_input(wildcards.experiment),
            output:
                "results/raw/{study}/{experiment}/{dataset}/{method}.json",
            log:
                "logs/{study}/benchmark/{experiment}/{dataset}/{method}.log",
            wildcard_constraints:
                experiment="|".join(PER_METHOD_EXPERIMENTS),
            conda:
                "../envs/decodebench.yaml"
            threads: BENCHMARK_THREADS
            resources:
                **device_resources(exclusive=True),
            params:
                config_file=CONFIG_FILE,
            shell:
                "decodebench run --quiet --config {params.config_file:q} --experiment {wildcards.experiment} "
                "--dataset {wildcards.dataset} --method {wildcards.method} --out {output:q} > {log:q} 2>&1"

    if "tune" in CFG:

        # The tuning stage's picks (decodebench.tuning): per method id the grid point with the
        # highest paired speedup on the tuning prompts; `tuned: true` configurations wait for it.
        rule tune_picks:
            input:
                result_files(CFG, "tune"),
            output:
                tuned_path(STUDY),
            log:
                f"logs/{STUDY}/tune.log",
            conda:
                "../envs/decodebench.yaml"
            params:
                config_file=CONFIG_FILE,
            shell:
                "decodebench tune --config {params.config_file} > {log} 2>&1"

else:

    # Reads third-party files by path, which compute nodes may not see: a local job.
    localrules:
        import_results,

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
            "decodebench import --format {params.format} {input.sources:q} --config {params.config_file:q} "
            "--out {output} --study {params.study} > {log:q} 2>&1"
