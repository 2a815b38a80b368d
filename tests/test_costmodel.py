"""The cost model fitted in place (decodebench.costmodel) on hand-made records, and the
speculative benchmark that reports it, end to end on a tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from decodebench.costmodel import fit_method, predicted_time_s, realised_over_predicted

REPO = Path(__file__).resolve().parents[1]
VERIFY = (0.010, 0.002)  # s, s per token of width
DRAFT = (0.001, 0.003)  # s, s per forward


def spec_record(prompt: int, repeat: int, widths, forwards, overhead: float = 1.0) -> dict:
    verify = [VERIFY[0] + VERIFY[1] * w for w in widths]
    draft = [DRAFT[0] + DRAFT[1] * f for f in forwards]
    prefill = 0.05
    wall = (prefill + sum(verify) + sum(draft)) * overhead
    return {"prompt_id": f"p{prompt}", "prompt_index": prompt, "repeat": repeat, "new_tokens": 2 * len(widths),
            "wall_time_s": wall, "prefill_time_s": prefill, "verify_tokens_per_round": list(widths),
            "verify_time_per_round_s": verify, "draft_forwards_per_round": list(forwards),
            "draft_tokens_fed_per_round": [f + 1 for f in forwards], "draft_time_per_round_s": draft}


def ar_record(prompt: int, repeat: int, new: int, step: float = 0.02) -> dict:
    return {"prompt_id": f"p{prompt}", "prompt_index": prompt, "repeat": repeat, "new_tokens": new,
            "ttft_s": 0.05, "tpot_s": step, "wall_time_s": 0.05 + (new - 1) * step}


def test_fit_recovers_the_costs_that_made_the_times():
    recs = [spec_record(0, 0, [5, 5, 3, 5], [4, 4, 2, 4]), spec_record(1, 0, [5, 2, 5], [4, 1, 4])]
    fit = fit_method(recs)
    assert fit.verify == pytest.approx(VERIFY) and fit.rounds == 7
    assert fit.draft_s(4, 5) == pytest.approx(DRAFT[0] + DRAFT[1] * 4)
    assert predicted_time_s(recs[0], fit) == pytest.approx(recs[0]["wall_time_s"])


def test_realised_over_predicted_is_one_when_the_model_explains_the_time_and_shows_overhead():
    ar = [ar_record(p, r, 8) for p in range(3) for r in range(2)]
    exact = [spec_record(p, r, [5, 3, 5, 4], [4, 2, 4, 3]) for p in range(3) for r in range(2)]
    s = realised_over_predicted(exact, ar)
    assert s.estimate == pytest.approx(1.0) and s.low == pytest.approx(1.0) and s.high == pytest.approx(1.0)
    # 25 % of the method's time outside the modelled phases: realised = 0.8 x predicted
    slow = [spec_record(p, r, [5, 3, 5, 4], [4, 2, 4, 3], overhead=1.25) for p in range(3) for r in range(2)]
    fit = fit_method(exact)  # costs as the phases measured them
    assert realised_over_predicted(slow, ar, fit).estimate == pytest.approx(0.8)


def test_no_rounds_no_fit():
    assert fit_method([ar_record(0, 0, 8)]) is None
    assert realised_over_predicted([ar_record(0, 0, 8)], [ar_record(0, 0, 8)]) is None


def test_speculative_benchmark_reports_paired_speedups_and_the_fitted_model(tiny_config, tiny_models, tmp_path):
    """Smoke: the benchmark runs every greedy method paired on a tiny model (its own draft)."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speculative.py"), "--config", str(tiny_config),
                           "--limit", "2", "--max-new-tokens", "6", "--k", "2", "--methods", "linear", "pld",
                           "--draft", str(tiny_models["llama"]), "--out-dir", str(tmp_path / "out"),
                           "--json", str(tmp_path / "bench.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    import json

    rows = {r["method"]: r for r in json.loads((tmp_path / "bench.json").read_text())["rows"]}
    assert set(rows) == {"ar", "linear", "pld"}
    assert rows["linear"]["ids_equal_ar"] and rows["linear"]["fit"]["rounds"] > 0
    assert rows["linear"]["realised_over_predicted"] > 0 and rows["linear"]["speedup"] > 0
    assert "real/pred [95% CI]" in proc.stdout
