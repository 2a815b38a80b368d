import copy
import json
import os

import pytest

from decodebench.results import ResultError, atomic_write_text, ids_sha256, load_result, stat, summarise, write_result


def minimal_result() -> dict:
    record = {"prompt_index": 0, "prompt_id": "p0", "repeat": 0, "prompt_tokens": 8, "new_tokens": 4,
              "wall_time_s": 0.5, "tokens_per_s": 8.0, "ttft_s": 0.1, "tpot_s": 0.4 / 3,
              "peak_memory_mib": 100.0, "peak_memory_overhead_mib": 5.0, "memory_exact": True,
              "output_sha256": ids_sha256([1, 2, 3, 4])}
    return {
        "schema_version": "2.0", "kind": "measured", "study": "s", "experiment": "main",
        "dataset": {"name": "d", "loader": "jsonl", "source_kind": "local", "label": "d", "prompt_sha256": "0" * 64},
        "method": {"name": "ar", "id": "ar", "params": {}, "lossless": True, "greedy": True},
        "protocol": {"max_new_tokens": 4, "stop_at_eos": False, "warmups": 0, "repeats": 1, "seed": 0,
                     "prompts_requested": 1, "prompts_measured": 1},
        "models": {"target": {"name": "m", "source": "local:/m"}, "draft": None},
        "environment": {"device": "cpu", "device_name": "cpu", "dtype": "float32"},
        "provenance": {"git_commit": None, "git_dirty": None, "config_sha256": None, "job_sha256": None,
                       "started_at": None, "finished_at": None},
        "records": [record], "errors": [], "summary": summarise([record]),
    }


def test_round_trip(tmp_path):
    data = minimal_result()
    path = tmp_path / "r.json"
    write_result(path, data)
    assert load_result(path) == data


def test_malformed_file_is_rejected_naming_file_and_field(tmp_path):
    data = minimal_result()
    data["records"][0]["wall_time_s"] = "fast"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError) as err:
        load_result(path)
    assert str(path) in str(err.value)
    assert "records[0].wall_time_s" in str(err.value)


def test_missing_field_and_bad_method_id_are_named(tmp_path):
    data = minimal_result()
    del data["provenance"]["git_commit"]
    data["method"]["id"] = "magic"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError) as err:
        load_result(path)
    assert "provenance: 'git_commit' is a required property" in str(err.value)
    assert "method.id" in str(err.value)


def test_invalid_result_is_not_written(tmp_path):
    data = minimal_result()
    data["summary"]["tokens_per_s"]["std"] = -1.0
    with pytest.raises(ResultError):
        write_result(tmp_path / "r.json", data)
    assert list(tmp_path.iterdir()) == []


def test_non_json_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(ResultError, match="not valid JSON"):
        load_result(path)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing and renaming

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "x" * 10_000)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")
    real_fdopen = os.fdopen

    class Exploding:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[:3])
            raise OSError("disk full")

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Exploding(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError):
        atomic_write_text(path, "new content")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_stat_uses_sample_std():
    s = stat([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5
    assert s["std"] == pytest.approx(1.2909944487)  # ddof=1
    assert stat([5.0]) == {"mean": 5.0, "std": None, "n": 1}


def test_nan_is_rejected(tmp_path):
    data = copy.deepcopy(minimal_result())
    data["records"][0]["ttft_s"] = float("nan")
    with pytest.raises(ResultError, match="ttft_s"):
        write_result(tmp_path / "r.json", data)


def test_atomic_writes_get_a_normal_file_mode(tmp_path):
    import os

    from decodebench.results import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # mkstemp alone would leave 0600


def test_temporaries_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    """A writer killed with SIGKILL runs no cleanup and leaves its temporary file; the next
    write of the same file removes it. A live writer's temporary file, and other files', stay."""
    import os
    import signal
    import subprocess
    import sys

    from decodebench.results import atomic_write_text

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    stale = tmp_path / f".a.txt.{child.pid}.k3j2.tmp"  # what the killed writer left
    legacy = tmp_path / ".a.txt.x8y7.tmp"  # the name before pids were recorded
    live = tmp_path / f".a.txt.{os.getpid()}.q1w2.tmp"  # a write in progress (this process)
    other = tmp_path / f".b.txt.{child.pid}.k3j2.tmp"  # another file's
    for p in (stale, legacy, live, other):
        p.write_text("half")
    atomic_write_text(tmp_path / "a.txt", "complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.txt", live.name, other.name])
    assert (tmp_path / "a.txt").read_text() == "complete"
