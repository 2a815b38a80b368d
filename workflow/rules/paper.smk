# The PDF: latexmk over paper/main.tex, which inputs only paper/generated/ for measured values,
# once the final check's report is verified (its signature: a passing check of this config and
# of the current inputs; docs/check.md, rule gate). The verification is its own rule: the paper
# rule may run in a TeX container without decodebench.


rule verify_check:
    input:
        report=paper_check_report(),
        artifacts=[a for a in ARTIFACTS if not a.endswith(".png")],
        manifest=MANIFEST,
        manuscript="paper/main.tex",
    output:
        verified_check_report(),
    log:
        f"logs/{STUDY}/verify_check.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
        config_sha256=CONFIG_SHA256,
    shell:
        "decodebench check --verify-report {input.report:q} --config {params.config_file:q} 2>&1 "
        "| tee {log:q} > {output:q}"


rule paper:
    input:
        tex="paper/main.tex",
        bib="paper/refs.bib",
        generated=[a for a in ARTIFACTS if not a.endswith(".png")],
        check=verified_check_report(),
    output:
        PAPER_PDF,
    log:
        f"logs/{STUDY}/paper.log",
    # With --sdm apptainer: TeX Live's official image; otherwise the local latexmk.
    container:
        "docker://texlive/texlive:latest"
    shell:
        "if ! command -v latexmk > /dev/null; then "
        "echo 'latexmk not found: run `make tex` (as root, on Debian/Ubuntu) or install latexmk, "
        "texlive-latex-recommended, texlive-latex-extra and texlive-science' | tee {log:q} >&2; exit 1; fi; "
        "latexmk -pdf -interaction=nonstopmode -halt-on-error -cd -outdir=build {input.tex:q} > {log:q} 2>&1"
