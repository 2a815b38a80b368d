# Materialise each model once under resources/models/ and each dataset's prompt set under
# resources/prompts/<study>/. Benchmark jobs depend on these as ancient() inputs.


rule prepare_model:
    input:
        model_prerequisites,
    output:
        f"{RESOURCES}/models/{{model}}/decodebench_model.json",
    log:
        f"logs/{STUDY}/prepare_model/{{model}}.log",
    conda:
        "../envs/decodebench.yaml"
    threads: build_threads
    resources:
        **(device_resources(exclusive=False) if CFG.get("device") == "cuda" else {}),
    params:
        config_file=CONFIG_FILE,
        role=lambda wc: next(r for r, m in CFG["models"].items() if m["name"] == wc.model),
        command=lambda wc: ("build-draft" if "distilled" in model_spec(wc.model) else "prepare-model"),
    shell:
        "if [ {params.command} = build-draft ]; then "
        "decodebench build-draft --config {params.config_file:q} > {log:q} 2>&1; else "
        "decodebench prepare-model --config {params.config_file:q} --role {params.role} > {log:q} 2>&1; fi"


rule prepare_prompts:
    input:
        [ancient(m) for m in prepared_models()],
    output:
        str(prompt_file(RESOURCES, STUDY, "{dataset}")),
    log:
        f"logs/{STUDY}/prepare_prompts/{{dataset}}.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
    shell:
        "decodebench prepare-prompts --config {params.config_file:q} --dataset {wildcards.dataset} > {log:q} 2>&1"
