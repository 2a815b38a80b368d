"""Config validation before any job runs (issue 20, items 9 and 10): safe names, integers that
are ints, duplicate keys, labels LaTeX can typeset, method parameters, and what a study may
acknowledge. Each error names the config file, the field and what was expected."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from decodebench.config import ConfigError, expand_config, load_config

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "study": "s", "device": "cpu", "dtype": "float32",
    "models": {"target": {"name": "t", "path": "/x"}, "draft": {"name": "d", "path": "/y"}},
    "datasets": {"docs": {"loader": "jsonl", "path": "docs.jsonl", "num_prompts": 2, "prompt_tokens": 8}},
    "protocol": {"max_new_tokens": 4},
    "experiments": {"main": {"baseline": "ar", "datasets": ["docs"],
                             "methods": {"ar": {"method": "ar"}, "linear": {"method": "linear", "params": {"k": 3}}}}},
}


def write(tmp_path, cfg=None, text=None):
    path = tmp_path / "my config.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(cfg, sort_keys=False))
    return path


def refused(tmp_path, edit) -> str:
    cfg = copy.deepcopy(BASE)
    edit(cfg)
    path = write(tmp_path, cfg)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_the_base_config_loads(tmp_path):
    assert load_config(write(tmp_path, BASE))["experiments"]["main"]["methods"]["linear"]["params"] == {"k": 3}


@pytest.mark.parametrize("where", ["experiments", "datasets", "methods"])
def test_keys_that_would_leave_the_workspace_are_refused(tmp_path, where):
    def edit(cfg):
        exp = cfg["experiments"]["main"]
        if where == "experiments":
            cfg["experiments"]["../../x"] = cfg["experiments"].pop("main")
        elif where == "datasets":
            cfg["datasets"]["../../x"] = cfg["datasets"].pop("docs")
            exp["datasets"] = ["../../x"]
        else:
            exp["methods"]["../../x"] = exp["methods"].pop("linear")
    message = refused(tmp_path, edit)
    assert "key '../../x' is not a safe name (expected letters, digits" in message, message


def test_an_integer_written_as_a_float_is_refused(tmp_path):
    message = refused(tmp_path, lambda cfg: cfg["protocol"].update(max_new_tokens=64.0))
    assert "protocol.max_new_tokens: 64.0 is not of type 'integer'" in message, message


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    text = yaml.safe_dump(BASE, sort_keys=False).replace("study: s\n", "study: s\nstudy: other\n")
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text=text))
    assert "duplicate key 'study' (first on line 1; expected each key once" in str(exc.value)
    assert "line 2" in str(exc.value)


@pytest.mark.parametrize("label", ["tokens ≥ 10", "数据", "fast 🚀"])
def test_labels_latex_cannot_typeset_are_refused(tmp_path, label):
    message = refused(tmp_path, lambda cfg: cfg["experiments"]["main"]["methods"]["linear"].update(label=label))
    assert "experiments.main.methods.linear.label:" in message and "expected printable Latin-1" in message, message


def test_latin1_labels_are_accepted(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["datasets"]["docs"]["label"] = "Café & co_1 #%$ (µ)"
    assert load_config(write(tmp_path, cfg))


@pytest.mark.parametrize("params, expected", [
    ({"k": -3}, "k must be an integer >= 1, got -3"),
    ({"k": "four"}, "k must be an integer >= 1, got 'four'"),
    ({"k": 2.0}, "k must be an integer >= 1, got 2.0"),
    ({"kk": 3}, "unknown parameter(s) kk for method 'linear' (allowed: k, lookup, lookup_tokens, oracle_alpha)"),
])
def test_method_parameters_are_checked_when_the_config_is_read(tmp_path, params, expected):
    message = refused(tmp_path, lambda cfg: cfg["experiments"]["main"]["methods"]["linear"].update(params=params))
    assert f"experiments.main.methods.linear.params: {expected}" in message, message


def test_every_implemented_method_declares_its_parameters_where_the_config_is_checked():
    """config.check_method_params reads method_params (no torch); the registry must agree."""
    from decodebench.method_params import ALIASES, PARAMS
    from decodebench.methods import all_methods

    assert {mid: spec.params_cls for mid, spec in all_methods().items()} == {
        mid: cls for mid, cls in PARAMS.items() if mid not in ALIASES}
    assert all(PARAMS[alias] is PARAMS[target] for alias, target in ALIASES.items())


def test_checking_a_config_imports_no_torch(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, BASE)
    code = (f"import sys; from decodebench.config import load_config; load_config({str(path)!r}); "
            f"assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("params, expected", [
    ({"branch_factor": "four"}, "branch_factor must be of type int, got 'four' (method 'eab_cow')"),
    ({"entropy_threshold": True}, "entropy_threshold must be of type float, got True (method 'eab_cow')"),
])
def test_parameter_types_a_method_does_not_check_itself(tmp_path, params, expected):
    message = refused(tmp_path, lambda cfg: cfg["experiments"].update(multi={
        "baseline": "naive", "datasets": ["docs"],
        "methods": {"naive": {"method": "naive"}, "eab": {"method": "eab_cow", "params": params}}}))
    assert f"experiments.multi.methods.eab.params: {expected}" in message, message


def test_swept_parameters_are_checked_too(tmp_path):
    message = refused(tmp_path, lambda cfg: cfg["experiments"]["main"].update(sweep={"tree": {"tau": [0.05, 1.5]}}))
    assert "experiments.main.methods.tree_tau1.5.params: tau must be a number in [0, 1), got 1.5" in message, message


@pytest.mark.parametrize("rule", ["lossless", "manuscript", "artifacts"])
def test_a_measured_study_cannot_acknowledge_its_own_numbers(tmp_path, rule):
    message = refused(tmp_path, lambda cfg: cfg.update(check={"acknowledge": [
        {"rule": "baseline-stability", "reason": "a noisy shared machine"},
        {"rule": rule, "reason": "we do not want to see it"}]}))
    assert f"check.acknowledge[1].rule: '{rule}' cannot be acknowledged in a measured study" in message, message


def test_an_acknowledgement_needs_a_reason(tmp_path):
    message = refused(tmp_path, lambda cfg: cfg.update(check={"acknowledge": [{"rule": "contention"}]}))
    assert "check.acknowledge.0: 'reason' is a required property" in message, message


def _vary(vary: dict, **exp) -> dict:
    raw = {"experiments": {"ms": {"baseline": "sp", "datasets": ["d"], "protocol": {"num_samples": 4},
                                  "methods": {"sp": {"method": "shared_prefill", "label": "SP"},
                                              "eab": {"method": "eab", "cache": "shared_prefix", "label": "EAB",
                                                      "params": {"branch_factor": 4}}},
                                  "vary": vary, **exp}},
           "datasets": {"d": {}}}
    return expand_config(raw)["experiments"]["ms"]


def test_vary_varies_one_setting_at_a_time_with_per_variant_baselines():
    from decodebench.config import baseline_for

    exp = _vary({"num_samples": [2, 4, 8], "temperature": [0.7], "branch_factor": [2, 4], "entropy_threshold": [0.5]})
    assert list(exp["methods"]) == ["sp", "eab", "sp_n2", "eab_n2", "sp_n8", "eab_n8", "sp_temp0.7", "eab_temp0.7",
                                    "eab_bf2", "eab_et0.5"]  # 4 samples and branch factor 4 are the configurations
    eab_n2 = exp["methods"]["eab_n2"]
    assert eab_n2["method"] == "eab_shared_prefix" and eab_n2["protocol"] == {"num_samples": 2}
    assert eab_n2["label"] == "EAB (N=2)" and eab_n2["vary"] == {"of": "eab", "dimension": "num_samples", "value": 2}
    assert exp["methods"]["eab_bf2"]["params"] == {"branch_factor": 2}
    assert exp["methods"]["eab_et0.5"]["params"] == {"branch_factor": 4, "entropy_threshold": 0.5}
    assert exp["methods"]["eab_et0.5"]["label"] == "EAB (entropy threshold=0.5)"
    assert {m: baseline_for(exp, m) for m in exp["methods"]} == {
        "sp": "sp", "eab": "sp", "sp_n2": "sp_n2", "eab_n2": "sp_n2", "sp_n8": "sp_n8", "eab_n8": "sp_n8",
        "sp_temp0.7": "sp_temp0.7", "eab_temp0.7": "sp_temp0.7", "eab_bf2": "sp", "eab_et0.5": "sp"}


@pytest.mark.parametrize(("vary", "extra", "message"), [
    ({"depth": [2]}, {}, "neither a protocol setting"),
    ({"num_samples": [2]}, {"generation_lengths": [8]}, "do not combine"),
])
def test_vary_refuses_what_it_cannot_vary(vary, extra, message):
    with pytest.raises(ConfigError, match=message):
        _vary(vary, **extra)


def test_the_embedded_default_runs_the_multisample_sweeps_with_a_figure_each():
    from decodebench.layout import artifacts, benchmark_groups

    cfg = load_config(REPO / "config" / "config.yaml")
    exp = cfg["experiments"]["multisample_sweep"]
    assert exp["kind"] == "multisample_sweep" and exp["baseline"] == "shared_prefill"
    assert list(exp["vary"]) == ["num_samples", "temperature", "entropy_threshold", "branch_factor"]
    for dimension in exp["vary"]:
        assert f"paper/generated/figures/multisample_sweep_{dimension}.pdf" in artifacts(cfg)
    assert "paper/generated/tables/multisample_sweep.tex" in artifacts(cfg)
    groups = [g for g in benchmark_groups(cfg) if g["experiment"] == "multisample_sweep"]
    assert len(groups) == 1 and len(groups[0]["methods"]) == 14  # one job: the added cost is one model load
    from decodebench.kinds import report_caption

    assert report_caption("paper/generated/figures/multisample_sweep_num_samples.png") == "multisample_sweep"
    assert report_caption("paper/generated/figures/sweep.png") == "sweep"
    assert (REPO / "workflow" / "report" / "multisample_sweep.rst").exists()
