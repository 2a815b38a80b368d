# Config validation, wildcard constraints and input functions.
from decodebench.config import expand_config, validate_config

validate_config(config, workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else "config")
CFG = expand_config(config)
STUDY = CFG["study"]


wildcard_constraints:
    study=r"[A-Za-z0-9_-]+",
    experiment=r"[A-Za-z0-9_]+",
    dataset=r"[A-Za-z0-9_.-]+",
    method=r"[A-Za-z0-9_.-]+",


def result_path(experiment, dataset, method):
    return f"results/raw/{STUDY}/{experiment}/{dataset}/{method}.json"


def all_results():
    return [result_path(e, d, m)
            for e, exp in CFG["experiments"].items()
            for d in exp["datasets"]
            for m in exp["methods"]]
