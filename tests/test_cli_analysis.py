"""``tpdynamics stability`` and ``tpdynamics scan``."""
import json

import pytest

from tpdynamics_cli.main import SUBCOMMANDS, main


def _run_json(capsys, argv):
    code = main(argv + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_commands_are_registered():
    assert "stability" in SUBCOMMANDS and "scan" in SUBCOMMANDS


def test_stability_json(capsys):
    code, payload = _run_json(capsys, ["stability", "--layers", "3,5,5,5", "--batch", "3", "--sample", "1"])
    assert code == 0
    for key in ("eigenvalues", "spectral_abscissa", "numerical_abscissa", "hurwitz", "negative_definite",
                "map_spectral_radius", "transient_growth", "closed_form"):
        assert key in payload
    assert len(payload["eigenvalues"]) == 15 and all(len(pair) == 2 for pair in payload["eigenvalues"])
    assert payload["hurwitz"] is True and payload["verdict"] == "stable"
    assert payload["equilibrium"]["status"] == "converged" and payload["sample"] == 1
    cf = payload["closed_form"]
    assert cf["multiplicity"] == 5 and len(cf["eigenvalues"]) == 3
    assert payload["integrator_status"] == "converged" and payload["predicted_time"] > 0
    assert len(payload["per_sample"]["spectral_abscissa"]) == 3


def test_stability_closed_form_is_null_without_exact_inverses(capsys, tmp_path):
    plot = tmp_path / "stability.png"
    code, payload = _run_json(capsys, ["stability", "--layers", "3,4,4", "--feedback", "fixed", "--batch", "1",
                                       "--no-integrate", "--plot", str(plot), "--pseudospectrum"])
    assert code == 0 and payload["closed_form"] is None and payload["integrator_time"] is None
    assert plot.exists() and plot.stat().st_size > 10_000


def test_stability_bad_sample(capsys):
    with pytest.raises(SystemExit) as info:
        main(["stability", "--batch", "2", "--sample", "4"])
    assert info.value.code == 2
    assert "--sample=4 must be in 0..1" in capsys.readouterr().err


def test_scan_json_and_plot(capsys, tmp_path):
    plot = tmp_path / "scan.png"
    code, payload = _run_json(capsys, ["scan", "--cases", "300", "--seed", "2", "--depths", "2,3", "--widths", "1,2",
                                       "--map-cases", "4", "--no-progress", "--plot", str(plot)])
    assert code == 0
    for key in ("fraction_stable", "worst_abscissa", "fraction_negative_definite", "max_transient_growth", "cases"):
        assert key in payload
    assert payload["cases"] == 300 and payload["fraction_stable"] == 1.0
    assert payload["approximate_inverses"]["cases_per_cell"] == 4
    assert plot.exists() and plot.stat().st_size > 10_000


def test_scan_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        main(["scan", "--cases", "0"])
    assert info.value.code == 2 and "--cases=0 must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scan", "--depths", "2,x"])
    assert "comma-separated positive integers" in capsys.readouterr().err


def test_scan_negative_map_cases(capsys):
    with pytest.raises(SystemExit) as info:
        main(["scan", "--map-cases", "-1"])
    assert info.value.code == 2 and "--map-cases=-1 must be >= 0 (0 skips the map)" in capsys.readouterr().err
