"""The ``decodebench`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_run(args) -> int:
    from .config import load_config
    from .harness import run_job

    cfg = load_config(args.config)
    result = run_job(cfg, args.experiment, args.dataset, args.method, args.out, limit=args.limit,
                     max_new_tokens=args.max_new_tokens, prompts_path=args.prompts,
                     progress=not args.quiet)
    s = result["summary"]
    print(f"{args.out}: {result['protocol']['prompts_measured']} prompts, "
          f"{s['tokens_per_s']['mean']:.2f} tokens/s, "
          f"peak {s['peak_memory_mb']['mean']:.1f} MB (overhead {s['peak_memory_overhead_mb']['mean']:.1f} MB)")
    for e in result["errors"]:
        print(f"{args.out}: prompt {e['prompt_index']} failed: {e['message']}", file=sys.stderr)
    return 0


def _cmd_prepare_model(args) -> int:
    from .config import load_config
    from .models import materialise

    cfg = load_config(args.config)
    roles = args.role or list(cfg["models"])
    for role in roles:
        if role not in cfg["models"]:
            raise SystemExit(f"{args.config}: models.{role} is not set")
        path = materialise(cfg["models"][role], cfg.get("resources_dir", "resources"))
        print(f"{role}: {cfg['models'][role]['name']} -> {path or cfg['models'][role].get('hf')}")
    return 0


def _cmd_prepare_prompts(args) -> int:
    from .config import load_config, resolve_job
    from .harness import ensure_prompts

    cfg = load_config(args.config)
    datasets = args.dataset or list(cfg["datasets"])
    for d in datasets:
        if d not in cfg["datasets"]:
            raise SystemExit(f"{args.config}: no dataset '{d}' (defined: {', '.join(cfg['datasets'])})")
        exp = next((e for e, x in cfg["experiments"].items() if d in x["datasets"]), None)
        if exp is None:
            print(f"{d}: used by no experiment; skipped")
            continue
        job = resolve_job(cfg, exp, d, next(iter(cfg["experiments"][exp]["methods"])))
        path = ensure_prompts(job, path=Path(args.out) if args.out else None)
        print(f"{d}: {path}")
    return 0


def _cmd_make_tiny_model(args) -> int:
    from .testing import make_tiny_model

    path = make_tiny_model(args.directory, arch=args.arch, seed=args.seed, layers=args.layers,
                           hidden=args.hidden)
    print(path)
    return 0


def _cmd_aggregate(args) -> int:
    from .analysis import aggregate_files, write_table
    from .layout import result_files, table_path
    from .config import load_config

    cfg = load_config(args.config)
    for e in args.experiment or sorted(cfg["experiments"]):
        out = table_path(cfg["study"], e)
        table = aggregate_files(cfg, e, result_files(cfg, e))
        write_table(table, out)
        print(f"{out}: {len(table)} rows")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="decodebench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one benchmark job and write its result JSON")
    r.add_argument("--config", required=True, help="study config (YAML)")
    r.add_argument("--experiment", required=True)
    r.add_argument("--dataset", required=True)
    r.add_argument("--method", required=True, help="a method configuration name of the experiment")
    r.add_argument("--out", required=True, help="result file to write (atomically)")
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
    t = sub.add_parser("make-tiny-model", help="write a tiny random-weight model (tests, test configs)")
    t.add_argument("directory")
    t.add_argument("--arch", default="llama", choices=["llama", "gpt_neox"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--hidden", type=int, default=64)
    t.set_defaults(func=_cmd_make_tiny_model)

    a = sub.add_parser("aggregate", help="result files -> results/tables/<study>/<experiment>.csv")
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
    from .models import ModelUnavailable
    from .prompts import DatasetUnavailable
    from .results import ResultError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ModelUnavailable, DatasetUnavailable, ResultError) as exc:
        print(f"decodebench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
