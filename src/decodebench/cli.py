"""The ``decodebench`` command.

Exit codes: 0 done (a check without errors); 1 a failure or a check's findings; 2 a usage
error (argparse's own, or arguments the config cannot satisfy). Every error message on stderr
starts with ``decodebench: error: ``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

ERROR_PREFIX = "decodebench: error: "


class UsageError(Exception):
    """The command line asks for something the command cannot do (exit 2)."""


class CommandFailed(Exception):
    """The command could not do its work (exit 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse with the one error prefix (its subcommands' would start ``decodebench run: error:``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("decodebench").strip()
        self.exit(2, f"{ERROR_PREFIX}{command + ': ' if command else ''}{message}\n")


def _cmd_run(args) -> int:
    from .config import load_config
    from .harness import run_group

    if len(args.method) != len(args.out):
        raise UsageError(f"run: give one --out per --method (got {len(args.method)} methods, "
                         f"{len(args.out)} outputs)")
    cfg = load_config(args.config)
    outs = dict(zip(args.method, args.out))
    results = run_group(cfg, args.experiment, args.dataset, args.method, outs, limit=args.limit,
                        max_new_tokens=args.max_new_tokens, prompts_path=args.prompts, progress=not args.quiet)
    for name, result in results.items():
        s = result["summary"]
        print(f"{outs[name]}: {result['protocol']['prompts_measured']} prompts x {result['protocol']['repeats']} "
              f"repeats, {s['tokens_per_s']['mean']:.2f} tokens/s, "
              f"peak {s['peak_memory_mib']['mean']:.1f} MiB (overhead {s['peak_memory_overhead_mib']['mean']:.1f} MiB)")
        for e in result["errors"]:
            print(f"{outs[name]}: prompt {e['prompt_index']} failed: {e['message']}", file=sys.stderr)
    return 0


def _cmd_prepare_model(args) -> int:
    from .config import load_config
    from .models import materialise

    cfg = load_config(args.config)
    roles = args.role or list(cfg["models"])
    for role in roles:
        if role not in cfg["models"]:
            raise UsageError(f"{args.config}: models.{role} is not set")
        path = materialise(cfg["models"][role], cfg.get("resources_dir", "resources"))
        print(f"{role}: {cfg['models'][role]['name']} -> {path or cfg['models'][role].get('hf')}")
    return 0


def _cmd_prepare_prompts(args) -> int:
    from .config import load_config
    from .harness import ensure_prompts
    from .jobs import resolve_job

    cfg = load_config(args.config)
    datasets = args.dataset or list(cfg["datasets"])
    for d in datasets:
        if d not in cfg["datasets"]:
            raise UsageError(f"{args.config}: no dataset '{d}' (defined: {', '.join(cfg['datasets'])})")
        exp = next((e for e, x in cfg["experiments"].items() if d in x["datasets"]), None)
        if exp is None:
            print(f"{d}: used by no experiment; skipped")
            continue
        job = resolve_job(cfg, exp, d, next(iter(cfg["experiments"][exp]["methods"])))
        path = ensure_prompts(job, path=Path(args.out) if args.out else None)
        print(f"{d}: {path}")
    return 0


def _cmd_import(args) -> int:
    from .config import load_config
    from .importers import convert, import_options, write_results

    options = {}
    if args.config:
        cfg = load_config(args.config)
        if not cfg.get("import"):
            raise UsageError(f"{args.config}: has no import block")
        options = import_options(cfg)
    options.update({k: v for k, v in (("questions", args.questions), ("dataset", args.dataset),
                                      ("experiment", args.experiment)) if v is not None})
    study = args.study or args.format
    converted, skipped = [], []
    for path in args.files:
        c = convert(args.format, path, study, options)
        converted += c.results
        skipped += c.skipped
    for path, status in write_results(converted, args.out, force=args.force):
        print(f"{status}: {path}")
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"{len(converted)} results from {len(args.files)} files ({len(skipped)} records skipped)")
    return 0


def _cmd_tune(args) -> int:
    from . import layout
    from .config import ConfigError, load_config
    from .tuning import compute_picks, load_tuning_results, write_picks

    cfg = load_config(args.config)
    if "tune" not in cfg:
        raise ConfigError(f"{args.config}: has no tune block (docs/pipeline.md, 'Tuning')")
    picks = compute_picks(cfg, load_tuning_results(cfg, args.root))
    out = Path(args.root) / layout.tuned_path(cfg["study"])
    write_picks(out, picks)
    for method_id, family in picks["families"].items():
        ranked = sorted(family["candidates"], key=lambda c: -c["speedup"])
        shown = ", ".join(f"{c['name']} {c['speedup']:.2f}x" for c in ranked)
        print(f"{method_id}: pick {family['pick']} {family['params']} ({shown})")
    print(f"{out}: picks on {len(picks['prompt_ids'])} tuning prompts ({picks['dataset']})")
    return 0


def _cmd_export(args) -> int:
    from .export import export

    if args.tokenizer is None:
        print("decodebench export: no --tokenizer: measured answers are written with empty texts (their "
              "identity is kept in output_sha256); Spec-Bench's speed.py re-tokenises the baseline's text, "
              "so give the model's tokenizer directory for files meant for it", file=sys.stderr)
    written = export([Path(p) for p in args.results], args.out, repeat=args.repeat, tokenizer=args.tokenizer,
                     force=args.force, progress=None if args.quiet else lambda line: print(line, file=sys.stderr))
    for path, status in written:
        print(f"{status}: {path}")
    return 0


def _cmd_check(args) -> int:
    from .check import DEFAULT_CV_THRESHOLD, Report, check_paths, checked_inputs, find_result_files, verify_report
    from .config import config_sha256, load_config

    cfg = load_config(args.config) if args.config else None
    root = Path(args.root)
    if args.paths:
        paths, artifacts = [Path(p) for p in args.paths], False
    else:
        results = args.results or (f"results/raw/{cfg['study']}" if cfg else "results/raw")
        paths, artifacts = [root / results], True
        if not paths[0].is_dir():
            print(f"decodebench check: no results directory {paths[0]}", file=sys.stderr)
            paths = []
    if args.verify_report:
        report = Report()
        path = Path(args.verify_report)
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        verify_report(path, text, config_sha256(cfg or {}),
                      checked_inputs(root, find_result_files(paths), cfg, artifacts), report)
        print("\n".join(f.line() for f in report.findings) or f"{path}: gate: passed (signed by a passing check "
                                                                 f"of this config and these inputs)")
        return report.exit_code()
    cv_threshold = args.cv_threshold
    if cv_threshold is None:
        cv_threshold = (cfg.get("check", {}) if cfg else {}).get("cv_threshold", DEFAULT_CV_THRESHOLD)
    report = check_paths(paths, cfg=cfg, root=root, cv_threshold=cv_threshold, artifacts=artifacts,
                         rerender=not args.no_render, regenerate_prompts=not args.no_prompts)
    print(report.json(args.strict) if args.json else report.text(args.strict))
    return report.exit_code(args.strict)


def _cmd_build_draft(args) -> int:
    from .config import load_config
    from .draft import build_draft

    cfg = load_config(args.config)
    try:
        path, built = build_draft(cfg, progress=not args.quiet, force=args.force)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    print(f"draft: {cfg['models']['draft']['name']} -> {path} ({'built' if built else 'up to date'})")
    return 0


def _cmd_make_tiny_model(args) -> int:
    from .testing import make_tiny_model

    path = make_tiny_model(args.directory, arch=args.arch, seed=args.seed, layers=args.layers,
                           hidden=args.hidden)
    print(path)
    return 0


def _cmd_aggregate(args) -> int:
    from .analysis import aggregate_files, write_table
    from .config import load_config
    from .layout import result_files, setup_path, study_result_files, table_path
    from .study_setup import setup_files, write_setup_table

    cfg = load_config(args.config)
    for e in args.experiment or sorted(cfg["experiments"]):
        out = table_path(cfg["study"], e)
        table = aggregate_files(cfg, e, result_files(cfg, e))
        write_table(table, out)
        print(f"{out}: {len(table)} rows")
    # the setup section's values, from every result of the study (rule aggregate_setup)
    setup = setup_files(study_result_files(cfg))
    write_setup_table(setup, setup_path(cfg["study"]))
    print(f"{setup_path(cfg['study'])}: {len(setup)} values")
    return 0


def _cmd_render(args) -> int:
    from .config import load_config
    from .layout import MANIFEST
    from .render import render_all, write_manifest

    cfg = load_config(args.config)
    artifacts = render_all(cfg, Path(args.out))
    if args.out == ".":
        write_manifest(artifacts, MANIFEST)
    print(f"{len(artifacts)} artifacts under {args.out}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("decodebench")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="decodebench", description=__doc__)
    p.add_argument("--version", action="version", version=f"decodebench {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one benchmark job (one or more method configurations, measured "
                                   "interleaved) and write one result JSON per configuration")
    r.add_argument("--config", required=True, help="study config (YAML)")
    r.add_argument("--experiment", required=True)
    r.add_argument("--dataset", required=True)
    r.add_argument("--method", required=True, action="append",
                   help="a method configuration name of the experiment; repeat it to measure several "
                        "interleaved in this one job")
    r.add_argument("--out", required=True, action="append",
                   help="result file to write (atomically), one per --method, in the same order")
    r.add_argument("--limit", type=int, help="measure only the first N prompts (recorded in the result)")
    r.add_argument("--max-new-tokens", type=int, help="override the token budget (recorded in the result)")
    r.add_argument("--prompts", help="prompt JSONL to use instead of the one under resources/")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    m = sub.add_parser("prepare-model", help="materialise the config's models under resources/models/")
    m.add_argument("--config", required=True)
    m.add_argument("--role", action="append", help="target or draft (default: all)")
    m.set_defaults(func=_cmd_prepare_model)

    q = sub.add_parser("prepare-prompts", help="write the config's prompt sets under resources/prompts/")
    q.add_argument("--config", required=True)
    q.add_argument("--dataset", action="append")
    q.add_argument("--out", help="output JSONL (with a single --dataset)")
    q.set_defaults(func=_cmd_prepare_prompts)

    i = sub.add_parser("import", help="convert third-party result files into result JSONs")
    i.add_argument("--format", required=True, help="source layout (importers.FORMATS), e.g. dynatree")
    i.add_argument("files", nargs="+", metavar="FILE", help="source result files")
    i.add_argument("--out", required=True, help="writes OUT/<experiment>/<dataset>/<method>.json")
    i.add_argument("--study", help="study name recorded in the results (default: the format name)")
    i.add_argument("--config", help="study config whose import block gives the format's options "
                   "(spec-bench: questions, dataset, experiment, methods)")
    i.add_argument("--questions", help="spec-bench: question file (JSON lines with question_id, category)")
    i.add_argument("--dataset", help="spec-bench: the question set's name (default: from the categories)")
    i.add_argument("--experiment", help="spec-bench: experiment name (default: leaderboard)")
    i.add_argument("--force", action="store_true",
                   help="replace existing result files whose content differs (default: refuse)")
    i.set_defaults(func=_cmd_import)

    u = sub.add_parser("tune", help="the tuning stage's picks from the experiment 'tune' -> "
                                    "results/tables/<study>/tuned.json (docs/pipeline.md, 'Tuning')")
    u.add_argument("--config", required=True)
    u.add_argument("--root", default=".", help="repository root the results are under (default: .)")
    u.set_defaults(func=_cmd_tune)

    x = sub.add_parser("export", help="our result files -> answer files other tools evaluate (docs/import.md)")
    x.add_argument("--format", required=True, choices=["spec-bench"],
                   help="spec-bench: FastChat model_answer JSON lines (Spec-Bench's evaluation/speed.py)")
    x.add_argument("results", nargs="+", metavar="RESULT", help="result files or directories (searched recursively)")
    x.add_argument("--out", required=True, help="writes OUT/<experiment>/<dataset>/<answer file>.jsonl")
    x.add_argument("--repeat", type=int, default=0,
                   help="measured results: the repeat written (one answer per question; default 0)")
    x.add_argument("--tokenizer", help="local tokenizer directory to decode measured outputs into text "
                                       "(e.g. resources/models/<target>)")
    x.add_argument("--force", action="store_true", help="replace existing answer files with other content")
    x.add_argument("--quiet", action="store_true")
    x.set_defaults(func=_cmd_export)

    c = sub.add_parser("check", help="integrity rules over result files, generated artifacts and the paper "
                                     "(only reads; docs/check.md)")
    c.add_argument("paths", nargs="*", help="result files or directories (default: the study's results, "
                                            "paper/ and results/MANIFEST.json)")
    c.add_argument("--config", help="study config: baselines, staleness, re-rendering")
    c.add_argument("--results", help="results directory (default: results/raw/<study>)")
    c.add_argument("--root", default=".", help="repository root (default: the current directory)")
    c.add_argument("--strict", action="store_true", help="warnings are errors")
    c.add_argument("--cv-threshold", type=float, default=None,
                   help="largest coefficient of variation of a baseline's tokens/s "
                        "(default: the config's check.cv_threshold, else 0.15)")
    c.add_argument("--no-render", action="store_true", help="do not re-render artifacts to compare")
    c.add_argument("--no-prompts", action="store_true", help="do not re-make prompt sets with their loader")
    c.add_argument("--json", action="store_true", help="findings and counts as JSON")
    c.add_argument("--verify-report", metavar="REPORT",
                   help="do not check: verify that REPORT is a passing check of this config and of these inputs "
                        "as they are now (its signature; rule gate); exit 1 if not")
    c.set_defaults(func=_cmd_check)

    b = sub.add_parser("build-draft", help="distil the config's draft model (models.draft.distilled) once")
    b.add_argument("--config", required=True)
    b.add_argument("--force", action="store_true", help="rebuild even if an up-to-date draft exists")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_cmd_build_draft)

    t = sub.add_parser("make-tiny-model", help="write a tiny random-weight model (tests, test configs)")
    t.add_argument("directory")
    t.add_argument("--arch", default="llama", choices=["llama", "gpt_neox"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--hidden", type=int, default=64)
    t.set_defaults(func=_cmd_make_tiny_model)

    a = sub.add_parser("aggregate", help="result files -> results/tables/<study>/<experiment>.csv and setup.csv")
    a.add_argument("--config", required=True)
    a.add_argument("--experiment", action="append", help="default: every experiment of the config")
    a.set_defaults(func=_cmd_aggregate)

    g = sub.add_parser("render", help="aggregated tables -> paper/generated/ (+ results/MANIFEST.json)")
    g.add_argument("--config", required=True)
    g.add_argument("--out", default=".", help="root to render under (default: the repository; "
                                              "elsewhere no MANIFEST is written)")
    g.set_defaults(func=_cmd_render)
    return p


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .export import ExportError
    from .importers import ImportFormatError
    from .models import ModelUnavailable
    from .prompts import DatasetUnavailable
    from .results import ResultError

    args = build_parser().parse_args(argv)  # a usage error: argparse exits 2
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return 2
    except (CommandFailed, ConfigError, ModelUnavailable, DatasetUnavailable, ResultError, ImportFormatError,
            ExportError) as exc:
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
