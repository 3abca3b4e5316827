"""Bad command lines: each gives one line naming the option, the value and the fix, with exit status 2.

Each case drives ``tpdynamics_cli.main.main`` in-process. The memory cases lower the available
memory (``tpdynamics.validation.available_memory``) to 1 GiB instead of allocating anything, so they
refuse the same sizes on any machine.
"""
import argparse
import json
import os
import re
import warnings

import pytest

import tpdynamics.validation as validation
from tpdynamics.errors import TPDynamicsWarning
from tpdynamics_cli.main import build_parser, main, subcommand_parser

SMALL_MEMORY = 2 ** 30


@pytest.fixture
def paths(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    existing = tmp_path / "a-file"
    existing.write_text("keep me\n")
    return {"DIR": str(folder), "FILE": str(existing), "UNDER_FILE": str(existing / "out")}


def _fill(argv, paths):
    return [paths.get(a, a) for a in argv]


BAD_COMMAND_LINES = [
    # (argv, message regex) -- the commands as the issue tried them, then the ones found since
    (["compare", "alignment", "--mus", "0"], r"--mus '0' contains 0; every mu must lie in \(0, 1\)"),
    (["compare", "trajectories", "--mu", "0", "--layers", "3,3,3", "--steps", "2"],
     r"--mu=0.0 makes the layer factor .* Use mu > 0, e.g. --mu=0.1"),
    (["demo", "--batch", "0"], r"--batch=0 must be >= 1"),
    (["demo", "--batch", "-1"], r"--batch=-1 must be >= 1"),
    (["scan", "--cases", "1000000000"],
     r"--cases=1000000000 .* would take about 425 GiB, but only 1 GiB of memory is available"),
    (["train", "--method", "bp", "--batches-per-epoch", "1000000000"],
     r"--batches-per-epoch=1000000000 samples per epoch would take about \d+ GiB, but only 1 GiB"),
    (["equilibrium", "--layers", "100000,100000,100000"],
     r"the weights of --layers=\[100000, 100000, 100000\] would take about 447 GiB, but only 1 GiB"),
    (["equilibrium", "--json", "DIR"], r"--json .*a-folder is a folder; give a file name such as .*equilibrium.json"),
    (["scan", "--json", "DIR"], r"--json .*a-folder is a folder; give a file name such as .*scan.json"),
    (["train", "--method", "bp", "--csv", "DIR"], r"--csv .*a-folder is a folder; give a file name"),
    (["reproduce", "--quick", "--out", "FILE"], r"--out .*a-file is a file; give the name of a folder"),
    (["demo", "--out", "FILE"], r"--out .*a-file is a file; give the name of a folder"),
    (["demo", "--out", "UNDER_FILE"], r"--out .*a-file/out: .*a-file is a file, not a folder"),
    (["equilibrium", "--plot", "UNDER_FILE"], r"--plot .*a-file/out: .*a-file is a file, not a folder"),
    (["equilibrium", "--plot", "DIR"], r"--plot .*a-folder is a folder; give a file name such as .*equilibrium.png"),
    (["equilibrium", "--plot", "figure.xyz"], r"--plot figure.xyz: matplotlib cannot write .xyz figures"),
    (["equilibrium", "--layers", "6,,6"], r"--layers '6,,6' has an empty entry"),
    (["equilibrium", "--layers", "-3,6,6"], r"--layers '-3,6,6' contains -3; every entry must be a positive integer"),
    (["equilibrium", "--layers=6,6,"], r"--layers '6,6,' has an empty entry"),
    (["scan", "--cases", "1e9"], r"--cases expects a whole number >= 1 such as 100000 \(write it in digits"),
    (["scan", "--depths", "2,,3"], r"--depths '2,,3' has an empty entry"),
    (["stability", "--time-tol", "0"], r"--time-tol=0.0 must be finite and > 0"),
    (["train", "--method", "bp", "--n-train", "0"], r"--n-train=0 must be >= 1"),
    (["train", "--method", "bp", "--epochs", "2.5"], r"--epochs expects a whole number >= 1 such as 60"),
    (["equilibrium", "--eta-hta", "0.3"], r"unrecognized arguments: --eta-hta 0.3 \(did you mean --eta-hat\?\)"),
    (["demo", "--mu", "0"], r"--mu=0 leaves nothing to demonstrate"),
    (["compare", "alignment", "--eta-hat", "-1"], r"--eta-hat=-1.0 must be finite and > 0"),
]


@pytest.mark.parametrize("argv, message", BAD_COMMAND_LINES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_command_line_exits_2_with_one_clear_line(capsys, monkeypatch, paths, argv, message):
    monkeypatch.setattr(validation, "available_memory", lambda: SMALL_MEMORY)
    with pytest.raises(SystemExit) as info:
        main(_fill(argv, paths))
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tpdynamics {argv[0]}: error: "), err
    assert "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux), where nothing can be created")
@pytest.mark.parametrize("command", [["demo"], ["reproduce", "--quick"]])
def test_out_where_nothing_can_be_written(capsys, command):
    with pytest.raises(SystemExit) as info:
        main(command + ["--out", "/proc/foo"])
    assert info.value.code == 2
    assert "--out /proc/foo: cannot write in /proc" in capsys.readouterr().err


def test_existing_output_file_is_left_alone(capsys, paths):
    with pytest.raises(SystemExit):
        main(["demo", "--out", paths["FILE"]])
    assert open(paths["FILE"]).read() == "keep me\n"


# -- options that have no effect: a warning, and the command still runs ---------------------------------
NO_EFFECT = [
    (["equilibrium", "--layers", "3,3", "--batch", "1", "--free", "--eta-hat", "0.5"],
     "--eta-hat has no effect with --free"),
    (["equilibrium", "--layers", "3,3", "--batch", "1", "--solver", "anderson", "--method", "rk4"],
     "--method has no effect with --solver anderson"),
    (["stability", "--layers", "3,3", "--batch", "1", "--no-integrate", "--pseudospectrum"],
     "--pseudospectrum has no effect without --plot"),
    (["reproduce", "--list", "--quick"], "--quick has no effect with --list"),
    (["compare", "alignment", "--mus", "0.2", "--layers", "3,3,3", "--no-ensemble"],
     "--no-ensemble has no effect for 'alignment'"),
]


@pytest.mark.parametrize("argv, message", NO_EFFECT, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_an_option_with_no_effect_warns_in_one_line(capsys, argv, message):
    with warnings.catch_warnings():
        warnings.simplefilter("always", TPDynamicsWarning)
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 0
    assert f"tpdynamics {argv[0]}: warning: {message}" in err and "Traceback" not in err


def test_default_values_given_explicitly_do_not_warn(capsys):
    code = main(["equilibrium", "--layers", "3,3", "--batch", "1", "--free"])  # TPDynamicsWarning is an error here
    assert code == 0


def test_api_warnings_use_the_option_names(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always", TPDynamicsWarning)
        main(["train", "--method", "bp", "--epochs", "1", "--batches-per-epoch", "1", "--n-test", "5", "--quiet",
              "--eta-hat", "0.2"])
    err = capsys.readouterr().err
    assert "tpdynamics train: warning: --eta-hat is not used by bp and has no effect" in err


# -- misleading output ----------------------------------------------------------------------------------
def test_plot_without_suffix_reports_the_file_it_wrote(capsys, tmp_path):
    code = main(["equilibrium", "--layers", "3,3", "--batch", "1", "--plot", str(tmp_path / "adir")])
    out = capsys.readouterr().out
    assert code == 0 and (tmp_path / "adir.png").is_file() and not (tmp_path / "adir").exists()
    assert f"wrote {tmp_path / 'adir.png'}" in out


@pytest.mark.parametrize("solver, method", [("anderson", None), ("ode", "dopri5"), ("newton", None)])
def test_equilibrium_json_names_the_solver_that_ran(capsys, solver, method):
    code = main(["equilibrium", "--layers", "3,3,3", "--batch", "2", "--solver", solver, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["solver"] == solver and data["ode_method"] == method and data["stage_counts"] == {solver: 2}


# -- help texts -----------------------------------------------------------------------------------------
def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, subcommand_parser(parser, name)) for name in action.choices]


@pytest.mark.parametrize("name, sub", _subparsers(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_has_help_and_the_help_renders_cleanly(name, sub):
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in sub._actions
               if not a.help or a.help == argparse.SUPPRESS]
    assert not missing, f"{name}: options without help text: {missing}"
    text = sub.format_help()
    assert "%%" not in text and "%(" not in text, f"{name} --help shows a literal %%"


def test_train_help_shows_percent_signs_once(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width
    assert "95% interval computed on the log scale" in out and "95%%" not in out
