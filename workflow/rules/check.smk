# Integrity checks (decodebench check, docs/check.md); an error stops the build.
#   check_results: every result file (schema, memory, arithmetic, definitions, lossless,
#     comparability, baseline stability, provenance, staleness, dataset provenance), before
#     any table is made from them; every table depends on its report.
#   check: the same plus the generated artifacts (manifest hashes, hand edits, re-rendering
#     agrees) and the manuscript (no hand-typed measured numbers), before the PDF is built.
# The report is both the rule's output and its log, so a failing check leaves it readable.


rule check_results:
    input:
        all_results(),
    output:
        check_report(),
    log:
        f"logs/{STUDY}/check_results.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
    shell:
        "decodebench check --config {params.config_file} {input} 2>&1 | tee {log} > {output}"


rule check:
    input:
        results=all_results(),
        artifacts=[a for a in ARTIFACTS if not a.endswith(".png")],
        manifest=MANIFEST,
        manuscript="paper/main.tex",
    output:
        paper_check_report(),
    log:
        f"logs/{STUDY}/check.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
    shell:
        "decodebench check --config {params.config_file} 2>&1 | tee {log} > {output}"
