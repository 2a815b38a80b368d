"""The command's exit codes and error prefix: 2 for usage errors, 1 for failures, and every error
message starting with ``decodebench: error: `` (cli's module docstring)."""

import pytest

from decodebench.cli import ERROR_PREFIX, main


def test_argparse_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--no-such-option"])
    assert exc.value.code == 2
    assert ERROR_PREFIX in capsys.readouterr().err  # argparse: "decodebench: error: ..."


def test_arguments_the_command_cannot_satisfy_exit_2(capsys):
    code = main(["run", "--config", "unused.yaml", "--experiment", "main", "--dataset", "d",
                 "--method", "ar", "--method", "linear", "--out", "ar.json"])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"{ERROR_PREFIX}run: give one --out per --method")


@pytest.mark.parametrize("command", [["check", "--config"], ["aggregate", "--config"]])
def test_failure_exits_1_with_the_prefix(tmp_path, capsys, command):
    missing = tmp_path / "missing.yaml"
    assert main([*command, str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(ERROR_PREFIX) and f"{missing}: config file not found" in err, err
