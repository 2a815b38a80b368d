"""The artifacts rule (MANIFEST.json + re-rendering through decodebench.render.render_all) and
the manuscript rule (numbers typed into paper/*.tex). The render stage is another module; a
small fake with the agreed contract stands in for it here."""

import hashlib
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from decodebench.check import check_paths
from decodebench.check.synthetic import make_result, write_results

FIXTURES = Path(__file__).parent / "check_fixtures"
TABLE = "paper/generated/tables/main.tex"
NUMBERS = "paper/generated/numbers.tex"
CFG = {"study": "synthetic", "experiments": {"main": {"baseline": "ar"}}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_render_all(cfg: dict, out_dir: Path, root: Path | str = ".") -> dict:
    """The agreed contract: render every artifact under out_dir, return the manifest's artifacts.
    Reads the study's results under root (default the current directory), like the real stage."""
    base = Path(root) / "results" / "raw" / cfg["study"]
    results = sorted(Path("results/raw", cfg["study"]) / p.relative_to(base) for p in base.rglob("*.json"))
    data = {p: json.loads((Path(root) / p).read_text()) for p in results}
    tps = {d["method"]["name"]: d["summary"]["tokens_per_s"]["mean"] for d in data.values()}
    inputs = {str(p): _sha(Path(root) / p) for p in results}
    files = {
        TABLE: "\\begin{tabular}{lr}\nmethod & tokens/s \\\\\n"
               + "".join(f"{m} & {v:.2f} \\\\\n" for m, v in sorted(tps.items())) + "\\end{tabular}\n",
        NUMBERS: f"\\newcommand{{\\speedupLinear}}{{{tps['linear_k4'] / tps['ar']:.2f}}}\n",
    }
    out = {}
    for rel, text in files.items():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / rel).write_text(text)
        out[rel] = {"sha256": _sha(out_dir / rel), "inputs": inputs}
    return out


@pytest.fixture
def rendered(tmp_path, monkeypatch):
    """A repository root with results, rendered artifacts, a manifest and the fake renderer."""
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path, [make_result("ar"), make_result("linear_k4", "linear", tokens_per_s=32.0)])
    module = types.ModuleType("decodebench.render")
    module.render_all = fake_render_all
    monkeypatch.setitem(sys.modules, "decodebench.render", module)
    artifacts = fake_render_all(CFG, tmp_path)
    (tmp_path / "results" / "MANIFEST.json").write_text(json.dumps({"schema_version": "1.0",
                                                                    "artifacts": artifacts}))
    return tmp_path


def check(root, cfg=CFG):
    return check_paths([], cfg=cfg, root=root, artifacts=True)


def fired(report):
    return {(f.file, f.rule, f.severity) for f in report.findings if f.severity != "not-applicable"}


def test_fresh_rendering_passes(rendered):
    report = check(rendered)
    assert fired(report) == set(), report.text()
    assert report.checked[(TABLE, "artifacts")] == "passed"


def test_root_is_honoured_from_another_directory(rendered, tmp_path_factory, monkeypatch):
    """check --root: re-rendering reads the results and templates under the root, not the cwd
    (issue 20, item 8)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    report = check_paths([rendered / "results" / "raw"], cfg=CFG, root=rendered, artifacts=True,
                         regenerate_prompts=False)
    assert {f for f in fired(report) if f[1] in ("artifacts", "manuscript")} == set(), report.text()
    assert report.checked[(TABLE, "artifacts")] == "passed"
    (rendered / TABLE).write_text((rendered / TABLE).read_text().replace("linear_k4 & 32", "linear_k4 & 33"))
    report = check_paths([], cfg=CFG, root=rendered, artifacts=True)
    assert {(f.file.split(":")[0], f.rule) for f in report.findings if f.severity == "error"} == {(TABLE, "artifacts")}


def test_hand_edited_table_names_the_line(rendered):
    table = rendered / TABLE
    table.write_text(table.read_text().replace("linear_k4 & 32", "linear_k4 & 33"))
    report = check(rendered)
    assert {f.rule for f in report.findings} == {"artifacts"}
    assert {f.file.split(":")[0] for f in report.findings} == {TABLE}
    (diff,) = [f for f in report.findings if "fresh rendering" in f.message]
    assert diff.file == f"{TABLE}:4" and "expected 'linear_k4 & 32." in diff.message
    assert "found 'linear_k4 & 33." in diff.message
    assert any("changed since it was rendered" in f.message for f in report.findings)


def test_result_changed_after_rendering_makes_artifacts_stale(rendered):
    write_results(rendered, [make_result("linear_k4", "linear", tokens_per_s=40.0)])
    report = check(rendered)
    assert {f.rule for f in report.findings} == {"artifacts"}
    stale = [f for f in report.findings if f.message.startswith("stale: its input")]
    assert {f.file for f in stale} == {TABLE, NUMBERS}
    assert all("results/raw/synthetic/main/gutenberg/linear_k4.json" in f.message for f in stale)


def test_unlisted_file_and_missing_file(rendered):
    extra = rendered / "paper" / "generated" / "tables" / "extra.tex"
    extra.write_text("copied from another run\n")
    (rendered / NUMBERS).unlink()
    report = check(rendered)
    files = {f.file for f in report.findings}
    assert files == {"paper/generated/tables/extra.tex", NUMBERS}, report.text()
    assert any("not listed in results/MANIFEST.json" in f.message for f in report.findings)
    assert any(f.file == NUMBERS and "missing" in f.message for f in report.findings)


def test_missing_manifest(rendered):
    (rendered / "results" / "MANIFEST.json").unlink()
    report = check(rendered)
    assert ("results/MANIFEST.json", "artifacts", "error") in fired(report)


def test_render_failure_is_an_error(rendered, monkeypatch):
    def broken(cfg, out_dir):
        raise KeyError("tokens_per_s")

    monkeypatch.setattr(sys.modules["decodebench.render"], "render_all", broken)
    report = check(rendered)
    assert fired(report) == {("results/MANIFEST.json", "artifacts", "error")}, report.text()


def test_without_config_the_manifest_is_still_checked(rendered):
    (rendered / TABLE).write_text("edited\n")
    report = check(rendered, cfg=None)
    assert fired(report) == {(TABLE, "artifacts", "error"), ("results/MANIFEST.json", "artifacts", "warning")}


def test_manuscript_numbers_typed_by_hand(tmp_path):
    (tmp_path / "paper").mkdir()
    shutil.copy(FIXTURES / "main.tex", tmp_path / "paper" / "main.tex")
    report = check_paths([], root=tmp_path, artifacts=True)
    flagged = sorted((f.file, f.message.split("found ")[1].rstrip(")")) for f in report.findings)
    assert flagged == [("paper/main.tex:3", "'1.39\\\\times'"), ("paper/main.tex:4", "'+0.45\\\\%'"),
                       ("paper/main.tex:5", "'5853.3 MB'"), ("paper/main.tex:6", "'219.5 tokens/s'")], report.text()
    assert {f.rule for f in report.findings} == {"manuscript"}


def test_generated_tex_is_not_the_manuscript(rendered):
    (rendered / "paper" / "main.tex").write_text("\\input{generated/numbers}\\speedupLinear\\times{} faster\n")
    report = check(rendered)
    assert fired(report) == set(), report.text()
    assert report.checked[("paper/main.tex", "manuscript")] == "passed"


def test_copied_from_the_wrong_run(rendered):
    """Realistic combination: a speedup typed into main.tex and the table edited to match it."""
    (rendered / "paper" / "main.tex").write_text("Linear drafting is 1.71\\times{} faster.\n")
    table = rendered / TABLE
    table.write_text(table.read_text().replace("linear_k4 & 32", "linear_k4 & 34"))
    report = check(rendered)
    assert {(f.file.split(":")[0], f.rule) for f in report.findings} == {("paper/main.tex", "manuscript"),
                                                                        (TABLE, "artifacts")}


def test_table_naming_a_dataset_no_result_comes_from(rendered):
    """The results are the embedded Gutenberg set; a generated table captioned WikiText is not."""
    table = rendered / TABLE
    table.write_text(table.read_text().replace("method & tokens/s", "method (WikiText-2) & tokens/s"))
    report = check_paths([rendered / "results" / "raw"], cfg={"study": "another"}, root=rendered, artifacts=True,
                         regenerate_prompts=False)
    names = [f for f in report.findings if f.rule == "dataset-provenance"]
    assert [(f.file, f.severity) for f in names] == [(f"{TABLE}:2", "error")], report.text()
    assert "no checked result comes from the wikitext loader" in names[0].message


# --- manuscript: the tokenizer's forms, descriptive statements, exemptions, where it looks ------

MEASURED_FORMS = [
    r"Tree drafting is 1.4x faster.", r"Linear reaches 2x.", r"It is 1.70\(\times\) faster.",
    r"A speedup of \num{1.86}\(\times\).", r"Up to $1.39{\times}$ faster.", r"It runs 1.39 times faster.",
    r"Latency drops by 40\%.", r"Memory grows by 39 percent.", r"Peak \SI{5853.3}{MB} for the tree.",
    r"Acceptance rises \SI{39.6}{\percent} here.", r"Peak \qty{5853.3}{\mega\byte} for the tree.",
    r"Peak memory reaches 5,853 MB here.", r"The first token takes 12 ms on average.",
    r"The baseline decodes 219.5 tokens/s on the H100.",
]
DESCRIPTIVE_FORMS = [
    r"We ran on 8$\times$ A100 nodes.", r"The target is 40\times larger than the draft.",
    r"It loads a 1.5 GB checkpoint.", r"Nucleus sampling keeps 99.5\% of the mass.",
    r"A $2 \times 2$ grid of figures; a 95\% confidence interval; an 80 GB GPU; Section 4.1.",
    r"Each prompt is measured 3 times; the 1990s; a 7B model; an H100 80GB card.",
    r"Speedups carry their 95\,\% bootstrap interval.",
]


def _paper(tmp_path, text, name="main.tex"):
    (tmp_path / "paper").mkdir(exist_ok=True)
    (tmp_path / "paper" / name).write_text(text)
    return check_paths([], root=tmp_path, artifacts=True)


@pytest.mark.parametrize("sentence", MEASURED_FORMS)
def test_manuscript_measured_forms_are_errors(tmp_path, sentence):
    report = _paper(tmp_path, "\\section{Results}\n" + sentence + "\n")
    assert [(f.file, f.rule, f.severity) for f in report.findings] == [("paper/main.tex:2", "manuscript", "error")], \
        report.text()


@pytest.mark.parametrize("sentence", DESCRIPTIVE_FORMS)
def test_manuscript_hardware_and_size_statements_are_not_errors(tmp_path, sentence):
    report = _paper(tmp_path, sentence + "\n")
    assert report.findings == [], report.text()
    assert report.checked[("paper/main.tex", "manuscript")] == "passed"


def test_manuscript_number_split_across_lines_names_its_first_line(tmp_path):
    report = _paper(tmp_path, "Intro.\nTree drafting is 1.39\n\\times{} faster than AR.\n")
    assert [(f.file, f.rule) for f in report.findings] == [("paper/main.tex:2", "manuscript")], report.text()
    assert "split over lines 2-3" in report.findings[0].message


def test_manuscript_macro_holding_a_number(tmp_path):
    report = _paper(tmp_path, "\\newcommand{\\speedupTree}{1.39}\n\\newcommand{\\ncols}{2}\n"
                              "Tree drafting is \\speedupTree\\times{} faster, in \\ncols{} columns.\n")
    assert [(f.file, f.rule) for f in report.findings] == [("paper/main.tex:3", "manuscript")], report.text()
    assert "\\\\speedupTree\\\\times" in report.findings[0].message


def test_manuscript_line_exemption_needs_a_reason(tmp_path):
    report = _paper(tmp_path, "The draft is 2.5x faster per forward. % decodebench: not-measured quoted from [3]\n"
                              "The tree is 1.8x faster. % decodebench: not-measured\n")
    assert [(f.file, f.rule, f.severity) for f in report.findings] == [("paper/main.tex:2", "manuscript", "error")] * 2, \
        report.text()
    assert any("without a reason" in f.message for f in report.findings)


def test_manuscript_reads_inputs_from_outside_paper_and_template_captions(tmp_path):
    (tmp_path / "sections").mkdir()
    (tmp_path / "sections" / "intro.tex").write_text("Intro.\nWe are 1.9x faster.\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "main.tex").write_text(
        "\\#{ a table }\n\\caption{Throughput (\\VAR{x}), 95\\,\\% bootstrap interval;\n"
        "the tree reaches 2.31\\times{} on \\VAR{dataset}.}\n")
    report = _paper(tmp_path, "\\input{../sections/intro}\n\\input{generated/numbers}\n")
    assert sorted((f.file, f.rule) for f in report.findings) == [("sections/intro.tex:2", "manuscript"),
                                                                  ("templates/main.tex:3", "manuscript")], report.text()


def test_shipped_manuscript_and_templates_are_clean():
    root = Path(__file__).resolve().parents[1]
    from decodebench.check.manuscript import rule_manuscript
    from decodebench.check.report import Report

    report = Report()
    rule_manuscript(root, report)
    assert report.findings == [], report.text()
    assert ("paper/main.tex", "manuscript") in report.checked and ("templates/sweep.tex", "manuscript") in report.checked
