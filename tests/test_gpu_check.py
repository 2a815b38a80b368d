"""benchmarks/gpu_check.py stays working: its CPU form (--device cpu --tiny) runs every section."""

import json
import os
import subprocess
import sys
from pathlib import Path

from decodebench.methods import all_methods

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ["tracker", "lossless", "speed", "kv_memory", "scheduling"]


def test_cpu_tiny_check_runs_every_section(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert "[gpu_check" in proc.stdout  # progress is printed
    assert list(report["sections"]) == SECTIONS
    for name, section in report["sections"].items():
        assert "error" not in section, f"{name}: {section.get('error')}\n{section.get('traceback')}"
        assert isinstance(section["ok"], bool) and section["seconds"] >= 0
    lossless = report["sections"]["lossless"]
    greedy = [m for m, spec in all_methods().items() if spec.greedy and not spec.multi_sample and m != "ar"]
    cases = len(greedy) + 2 + 3  # + tree and dynatree padded, linear and tree (read, padded) in oracle mode
    assert lossless["ok"] and lossless["failures"] == 0
    assert lossless["generations"] == 2 * 2 * cases  # 2 archs x 2 dtypes x 1 prompt
    speed = report["sections"]["speed"]
    assert sorted(speed["methods"]) == sorted(f"{m}@{a}" for m in ("linear", "tree", "tree_padded")
                                              for a in (0.5, 0.7, 0.9))
    # the same draws grow the same trees, read per level or padded
    assert all(speed["methods"][f"tree@{a}"]["accepted_per_round"] == speed["methods"][f"tree_padded@{a}"]
               ["accepted_per_round"] for a in (0.5, 0.7, 0.9))
    assert speed["ar_over_static_generate"] > 0 and speed["static_generate_tokens_per_s"] > 0
    assert speed["logits_finite"]
    assert all(v["outputs_equal_ar"] and v["predicted_speedup"] > 0 for v in speed["methods"].values())
    assert speed["methods"]["linear@0.9"]["accepted_per_round"] > speed["methods"]["linear@0.5"]["accepted_per_round"]
    assert set(speed["forward_cost_median_s"]) == {"target", "draft"}
    assert report["sections"]["scheduling"]["jobs"] == 3
    assert (proc.returncode == 0) == report["ok"]
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert all(f"| {name} |" in markdown for name in SECTIONS) and "linear@0.7" in markdown
