# Config validation, wildcard constraints and the input functions that turn the config into
# file lists. Paths are built by decodebench.layout (and prompts.prompt_file), nowhere else.
import ast
from pathlib import Path

from snakemake.exceptions import WorkflowError

from decodebench.config import Config, ConfigError, canonical_hash, check_config, read_yaml
from decodebench.kinds import report_caption
from decodebench.layout import (
    MANIFEST,
    artifacts,
    benchmark_groups,
    figures,
    imported,
    result_files,
    setup_path,
    study_result_files,
    table_path,
    tuned_experiment,
    tuned_path,
)
from decodebench.prompts import prompt_file

DEFAULT_CONFIG = "config/config.yaml"
CONFIG_FILE = workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else DEFAULT_CONFIG

# The benchmark jobs read CONFIG_FILE themselves, so the config Snakemake plans with must be
# exactly that file: no other config file or --config value merged into it.
try:
    file_config = read_yaml(CONFIG_FILE)  # duplicate keys refused (Snakemake's loader keeps the last)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
if not workflow.overwrite_configfiles and not config:
    config.update(file_config)  # the default, loaded here (see the Snakefile)
if config != file_config:
    raise WorkflowError(
        f"the config differs from {CONFIG_FILE}: Snakemake merged it with another config file or "
        f"--config values. Give one --configfile and put every setting in it."
    )
# The whole config is checked here, before any job runs (names, types, references, labels,
# acknowledgements, every method's parameters): `snakemake -n` fails with the error.
try:
    CFG = check_config(config, CONFIG_FILE)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# The check reports depend on it (a params change reruns them): the same hash as load_config's.
CONFIG_SHA256 = canonical_hash(CFG)

STUDY = CFG["study"]
RESOURCES = CFG.get("resources_dir", "resources")
EXPERIMENTS = sorted(CFG["experiments"])
ARTIFACTS = artifacts(CFG)
PAPER_PDF = "paper/build/main.pdf"
SETUP_TABLE = setup_path(STUDY)
GROUPS = [] if imported(CFG) else benchmark_groups(CFG)
PAIRED_GROUPS = [g for g in GROUPS if g["pairing"] == "interleaved"]
PER_METHOD_EXPERIMENTS = sorted({g["experiment"] for g in GROUPS if g["pairing"] == "per_method"})
# CPU: a benchmark job takes every core the run is given, so measurements never overlap.
BENCHMARK_THREADS = workflow.cores if CFG.get("device") == "cpu" else (CFG.get("threads") or 1)

# Cluster resources of every benchmark job (both kinds of benchmark rule) and, on cuda, of
# prepare_model (a distilled draft trains on the GPU); sized from the config's device. A GPU
# is requested once, as `gpu` (the SLURM plugin turns it into --gpus=1; never also a gres).
# Benchmark jobs run alone on their node (--exclusive), so no other job disturbs a measurement.
# A site changes these in its profile under `set-resources: benchmark_cuda:` or
# `benchmark_cpu:` (keys named after the device, not rules; docs/pipeline.md, "On a cluster").
DEVICE_RESOURCES = {
    "cuda": {"gpu": 1, "cpus_per_task": CFG.get("threads") or 8, "mem_mb": 64000, "runtime": 240},
    "cpu": {"cpus_per_task": CFG.get("threads") or BENCHMARK_THREADS, "mem_mb": 16000, "runtime": 120},
}


def visible_gpus():
    """GPUs this machine offers to local jobs: CUDA_VISIBLE_DEVICES when set, else the lines of
    `nvidia-smi -L`; at least 1 (a CUDA study on a machine without a GPU fails in its jobs)."""
    import os
    import shutil
    import subprocess

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
            return max(1, sum(1 for line in out.splitlines() if line.startswith("GPU ")))
        except (OSError, subprocess.SubprocessError):
            pass
    return 1


# A local run of a CUDA study: each benchmark job asks for gpu=1, and without a limit Snakemake
# would start several on the same GPU at once (their timings and peaks would then be shared).
# Unless the user gives --resources gpu=N, the limit is the number of visible GPUs; a cluster
# executor is left alone (each job gets its own GPU there).
LOCAL_GPUS = None
if CFG.get("device") == "cuda" and workflow.local_exec and "gpu" not in workflow.global_resources:
    LOCAL_GPUS = visible_gpus()
    workflow.register_resource("gpu", LOCAL_GPUS)


def _constant(resource):
    """A profile's set-resources value as written: a number or a string (quoted or not)."""
    raw = getattr(resource, "raw", resource)
    try:
        return ast.literal_eval(raw) if isinstance(raw, str) else raw
    except (ValueError, SyntaxError):
        return raw


def device_resources(exclusive):
    """The resources a job on the config's device asks for, with the site's overrides."""
    key = "cuda" if CFG.get("device") == "cuda" else "cpu"
    site = {
        name: _constant(r)
        for name, r in workflow.resource_settings.overwrite_resources.get(f"benchmark_{key}", {}).items()
    }
    # a site's own slurm_extra (e.g. --constraint=...) comes after --exclusive, not instead
    extra = " ".join(filter(None, ["--exclusive" if exclusive else None, site.pop("slurm_extra", None)]))
    return {**DEVICE_RESOURCES[key], **site, **({"slurm_extra": extra} if extra else {})}


wildcard_constraints:
    study=STUDY,
    experiment="|".join(EXPERIMENTS),
    dataset=r"[A-Za-z0-9_.-]+",
    method=r"[A-Za-z0-9_.+-]+",
    model=r"[A-Za-z0-9_.-]+",


def model_marker(role):
    """The file that says a model is prepared; None for models used in place (hub, local dir)."""
    spec = CFG["models"][role]
    if "gguf" in spec or "distilled" in spec:
        return f"{RESOURCES}/models/{spec['name']}/decodebench_model.json"
    return None


def model_spec(name):
    """The config's model entry named `name` (the {model} wildcard of the prepare rule)."""
    return next(m for m in CFG["models"].values() if m["name"] == name)


def model_prerequisites(wildcards):
    """A distilled draft is built from the prepared target: it waits for the target's card."""
    spec = model_spec(wildcards.model)
    target = model_marker("target")
    return [ancient(target)] if "distilled" in spec and target else []


def build_threads(wildcards):
    """A distilled draft's build uses its recipe's threads (labelling and training)."""
    return (model_spec(wildcards.model).get("distilled") or {}).get("threads") or 1


def prepared_models():
    return [m for m in (model_marker(role) for role in sorted(CFG.get("models", {}))) if m]


def benchmark_inputs(dataset):
    """Prepared models and the prompt file, as ancient(): a regenerated cache never makes an
    existing result outdated (staleness is `check`'s job, from the recorded hashes)."""
    return [ancient(p) for p in prepared_models() + [str(prompt_file(RESOURCES, STUDY, dataset))]]


def tuned_input(experiment):
    """The tuning picks, for an experiment with `tuned: true` configurations (decodebench.tuning)."""
    return [tuned_path(STUDY)] if tuned_experiment(CFG, experiment) else []


def run_arguments(group):
    """`decodebench run` arguments of a paired group: every --method with its --out."""
    pairs = [f"--method {m} --out {o}" for m, o in zip(group["methods"], group["outputs"])]
    return f"--experiment {group['experiment']} --dataset {group['dataset']} " + " ".join(pairs)


def experiment_results(wildcards):
    """Every result file of an experiment (an imported study: the import's output folder)."""
    if imported(CFG):
        return [f"results/raw/{STUDY}"]
    return result_files(CFG, wildcards.experiment)


def all_results():
    if imported(CFG):
        return [f"results/raw/{STUDY}"]
    return study_result_files(CFG)


def all_tables():
    return [table_path(STUDY, e) for e in EXPERIMENTS]


def check_report():
    return f"results/tables/{STUDY}/check.txt"


def paper_check_report():
    return f"results/tables/{STUDY}/check_paper.txt"


def verified_check_report():
    return f"results/tables/{STUDY}/check_paper.verified.txt"


def import_questions():
    """The question file an imported study names (import.questions; spec-bench), or none."""
    return [CFG["import"]["questions"]] if imported(CFG) and "questions" in CFG["import"] else []


def import_sources():
    """The third-party files an imported study converts (importers.source_files: import.files
    under import.path, default every file matching the format's SOURCE_GLOB there)."""
    from decodebench.importers import ImportFormatError, source_files

    try:
        return [str(p) for p in source_files(Config(CFG, CONFIG_FILE))]
    except ImportFormatError as exc:
        raise WorkflowError(str(exc)) from None
