import json
import subprocess
import sys

import pytest

from tpdynamics_cli.main import main


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_equilibrium_json_has_the_documented_fields(capsys, tmp_path):
    code, out, err = run_cli(capsys, "equilibrium", "--layers", "3,4,4", "--batch", "2", "--json",
                             "--plot", str(tmp_path / "traj.png"))
    assert code == 0
    data = json.loads(out)
    for key in ("converged", "residual", "t", "nfev", "status", "mu", "tau", "layers"):
        assert key in data
    assert data["converged"] is True and data["status"] == "converged" and data["layers"] == [3, 4, 4]
    assert data["residual"] < 1e-6 and data["mu"] == 0.2
    # the stage that solved each sample, not the integrator's method when it never ran
    assert data["stage_per_sample"] == ["sor", "sor"] and data["stage_counts"] == {"sor": 2}
    assert data["ode_method"] is None and "method" not in data
    assert (tmp_path / "traj.png").stat().st_size > 1000
    assert "wrote" in err  # human output goes to stderr when JSON goes to stdout


def test_equilibrium_ode_solver_reports_time(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "equilibrium", "--layers", "3,4,4", "--solver", "ode", "--json",
                           str(tmp_path / "r.json"), "--free", "--feedback", "learned")
    data = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and data["solver"] == "ode" and data["t"] >= 0 and data["teaching"]["kind"] == "free"
    assert data["stage_per_sample"] == ["ode"] * data["batch"] and data["ode_method"] == "dopri5"


@pytest.mark.parametrize("args, message", [
    (["--mu", "1.5"], "mu=1.5 is outside"),
    (["--feedback", "nope"], "Valid names: exact, fixed, learned, original"),
    (["--layers", "3,4,5", "--feedback", "exact"], "square weights"),
    (["--solver", "magic"], "anderson, auto, map, newton, ode, sor"),
])
def test_bad_input_exits_2_with_a_clear_message(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["equilibrium", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--method", ","], "--method needs at least one name"),
    (["compare", "alignment", "--mus", "0.1,x"], "--mus must be comma-separated numbers"),
    (["compare", "alignment", "--eta-hat", "0"], "--eta-hat=0.0 must be finite and > 0"),  # not replaced by the default
])
def test_bad_list_arguments_exit_2_with_a_clear_message(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_writes_figures_and_json_whose_claims_hold(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0
    files = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"demo.json", "trajectory_free.png", "trajectory_taught.png", "learning_signal.png"} <= files
    data = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert data["free"]["max_deviation_from_forward_pass"] < 1e-8
    assert data["taught"]["converged"] and data["max_gap_between_solvers"] < 1e-8
    assert all(row["relative_error"] < 0.1 for row in data["learning_signal_eq_6_16"])


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "tpdynamics_cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "equilibrium" in out.stdout and "demo" in out.stdout
