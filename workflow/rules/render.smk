# LaTeX tables (jinja2), figures (matplotlib; PDF for the paper, PNG for the report),
# numbers.tex, setup.tex, study.tex, and results/MANIFEST.json.


rule render:
    input:
        tables=all_tables(),
        setup=SETUP_TABLE,
        results=all_results(),
        templates=sorted(str(p) for p in Path("templates").glob("*.tex")),
    output:
        [a for a in ARTIFACTS if not a.endswith(".png")],
        [report(f, caption=f"../report/{report_caption(f)}.rst", category="Figures") for f in figures(CFG)],
        manifest=MANIFEST,
    log:
        f"logs/{STUDY}/render.log",
    conda:
        "../envs/decodebench.yaml"
    params:
        config_file=CONFIG_FILE,
    script:
        "../../scripts/render.py"
