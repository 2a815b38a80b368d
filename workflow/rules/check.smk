# Integrity checks (decodebench check, docs/check.md); an error stops the build.
#   check_results: every result file (schema, memory, arithmetic, definitions, lossless,
#     comparability, baseline stability, provenance, staleness, dataset provenance), before
#     any table is made from them; every table depends on its report.
#   check: the same plus the generated artifacts (manifest hashes, hand edits, re-rendering
#     agrees) and the manuscript (no hand-typed measured numbers), before the PDF is built.
# The report is both the rule's output and its log, so a failing check leaves it readable.
# Each report depends on the config's hash (params: a changed config reruns the checks) and
# on its inputs, and ends with a signature over both (rule gate): the PDF rule verifies it
# (`decodebench check --verify-report`), so a hand-written or outdated report opens nothing.


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
        config_sha256=CONFIG_SHA256,
    shell:
        "decodebench check --config {params.config_file:q} {input:q} 2>&1 | tee {log:q} > {output:q}"


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
        config_sha256=CONFIG_SHA256,
    shell:
        "decodebench check --config {params.config_file:q} 2>&1 | tee {log:q} > {output:q}"
