# Integrity check of every result file (schema, hashes, staleness); stops the build on errors.
# Every table depends on its report.


rule check:
    input:
        all_results(),
    output:
        check_report(),
    log:
        f"logs/{STUDY}/check.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
    shell:
        "decodebench check --config {params.config_file} > {output} 2> {log}"
