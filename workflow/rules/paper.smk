# The PDF: latexmk over paper/main.tex, which inputs only paper/generated/ for measured values.


rule paper:
    input:
        tex="paper/main.tex",
        bib="paper/refs.bib",
        generated=[a for a in ARTIFACTS if not a.endswith(".png")],
        check=paper_check_report(),
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
        "texlive-latex-recommended, texlive-latex-extra and texlive-science' | tee {log} >&2; exit 1; fi; "
        "latexmk -pdf -interaction=nonstopmode -halt-on-error -cd -outdir=build {input.tex} > {log} 2>&1"
