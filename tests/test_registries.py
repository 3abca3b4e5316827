"""The registries: their mechanics, configured instances, and the registry-wide checks that new variants meet.

Every registry-parametrized test reads ``REGISTRY.names()`` when it is collected and calls one check function
per variant. The tests below register a new variant in each registry (in a fixture, unregistered afterwards),
run the same check function on it, and show that a broken variant fails that check.
"""
import contextlib

import numpy as np
import pytest
import torch

import tpdynamics as tp
from analysis import ABSCISSA_METHODS, AbscissaMethod, Spectrum, spectral_abscissa, stability_report
from analysis.stability import DenseMethod
from tpdynamics.continuous import CONTINUOUS_MODELS, TwoPhaseModel
from tpdynamics.training import LEARNING_RULES
from tpdynamics.training.rules import Backpropagation, DifferenceTargetPropagationApproximateInverse, StepRecord

from . import test_continuous, test_dynamics, test_equilibrium, test_jacobian, test_nonlinearities, test_stability
from . import test_training_rules
from .problems import make_problem

DT = torch.float64


@contextlib.contextmanager
def registered(registry, name, cls):
    """Register ``cls`` under ``name`` for the duration of the block."""
    registry.register(name)(cls)
    try:
        yield cls
    finally:
        registry.unregister(name)


# -- the mechanics ---------------------------------------------------------------------------------------------------
def test_get_accepts_a_name_a_subclass_and_where_allowed_a_configured_instance():
    assert tp.EQUILIBRIUM_SOLVERS.get("anderson") is tp.AndersonSolver
    assert tp.EQUILIBRIUM_SOLVERS.get(tp.NewtonSolver) is tp.NewtonSolver
    solver = tp.AndersonSolver(memory=3)
    assert tp.EQUILIBRIUM_SOLVERS.get(solver) is solver and tp.EQUILIBRIUM_SOLVERS.create(solver) is solver
    assert tp.EQUILIBRIUM_SOLVERS.create("anderson", memory=2).memory == 2
    method = DenseMethod()
    assert ABSCISSA_METHODS.get(method) is method
    with pytest.raises(ValueError, match=r"solver=AndersonSolver\(...\) is already configured; pass memory to its "
                                         r"constructor"):
        tp.EQUILIBRIUM_SOLVERS.create(solver, memory=4)
    # families whose objects the caller builds from other data take names and classes only
    with pytest.raises(TypeError, match=r"feedback must be a name or a FeedbackMapping subclass, not an instance "
                                        r"\(LearnedInverseFeedback\(...\)\); pass e.g. "
                                        r"feedback=LearnedInverseFeedback"):
        tp.FEEDBACK_FORMS.get(tp.LearnedInverseFeedback(torch.eye(2, dtype=DT)))
    with pytest.raises(TypeError, match=r"solver must be a name \(str\) or a EquilibriumSolver subclass, or a "
                                        r"EquilibriumSolver instance, got int"):
        tp.EQUILIBRIUM_SOLVERS.get(3)


def test_register_checks_the_contract_and_unregister_undoes_it():
    class Incomplete(tp.EquilibriumSolver):  # no solve()
        pass

    with pytest.raises(TypeError, match=r"Incomplete cannot be registered as equilibrium solver 'incomplete': it does "
                                        r"not implement the abstract hook\(s\) solve of EquilibriumSolver"):
        tp.EQUILIBRIUM_SOLVERS.register("incomplete")(Incomplete)
    with pytest.raises(TypeError, match="int must subclass EquilibriumSolver"):
        tp.EQUILIBRIUM_SOLVERS.register("number")(int)
    with pytest.raises(ValueError, match="equilibrium solver 'ode' is already registered"):
        tp.EQUILIBRIUM_SOLVERS.register("ode")(tp.ODESolver)
    with registered(tp.EQUILIBRIUM_SOLVERS, "anderson-again", type("AndersonAgain", (tp.AndersonSolver,), {})):
        assert "anderson-again" in tp.EQUILIBRIUM_SOLVERS.names()
    assert "anderson-again" not in tp.EQUILIBRIUM_SOLVERS.names()
    with pytest.raises(ValueError, match="equilibrium solver 'anderson-again' is not registered. Registered: anderson"):
        tp.EQUILIBRIUM_SOLVERS.unregister("anderson-again")
    with pytest.raises(TypeError, match="Can't instantiate abstract class"):
        tp.NetworkDynamics(*make_problem()[:2])


def test_a_configured_anderson_instance_is_used_as_given():
    """Anderson with memory 1 is the plain fixed-point iteration h <- h + tau dh/dt (per sample, until that
    sample's residual is below tol): run it by hand and compare iterates and iteration counts."""
    _, _, _, dyn = make_problem(mu=0.2)
    tol = 1e-10
    with torch.no_grad():
        state, picard = dyn.initial_state(), 0
        while True:
            active = (dyn.drive(state) / dyn.tau).abs().amax(-1) >= tol
            if not bool(active.any()):
                break
            state, picard = torch.where(active[:, None], state + dyn.drive(state), state), picard + 1
        plain = tp.equilibrium(dyn, solver=tp.AndersonSolver(memory=1), tol=tol)
    assert plain.success and plain.iterations == picard > 5
    torch.testing.assert_close(plain.state, state, rtol=0, atol=1e-14)
    accelerated = tp.equilibrium(dyn, solver=tp.AndersonSolver(memory=3), tol=tol)
    assert accelerated.success and accelerated.iterations < picard
    with pytest.raises(ValueError, match="memory=0 must be >= 1"):
        tp.AndersonSolver(memory=0)
    report = stability_report(jacobian=np.diag([-1.0, -2.0]), method=DenseMethod())
    assert report.method == "dense" and report.spectral_abscissa == -1.0


@pytest.mark.parametrize("solver", tp.EQUILIBRIUM_SOLVERS.names())
def test_nfev_counts_every_evaluation_of_the_right_hand_side(solver, monkeypatch):
    """``evaluate`` (and ``evaluate_group`` once per sweep) are the counted evaluations: count their calls and compare."""
    calls = []
    original, original_group = tp.NetworkDynamics.evaluate, tp.NetworkDynamics.evaluate_group

    def counting(self, state, *, check=True):
        calls.append(1)
        return original(self, state, check=check)

    def counting_group(self, blocks, group, *, check=True):
        if 0 in group:  # a sweep over all groups evaluates every block once
            calls.append(1)
        return original_group(self, blocks, group, check=check)

    monkeypatch.setattr(tp.NetworkDynamics, "evaluate", counting)
    monkeypatch.setattr(tp.NetworkDynamics, "evaluate_group", counting_group)
    _, _, _, dyn = make_problem(nonlinearity="tanh")
    with torch.no_grad():  # no implicit-gradient step after the solve
        result = tp.equilibrium(dyn, solver=solver, tol=1e-9)
    assert result.success and result.nfev == len(calls) > 0


def test_adaptive_methods_come_from_torchdiffeq_s_own_table():
    from torchdiffeq._impl.odeint import SOLVERS
    from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver

    assert tp.ode_methods() == sorted(SOLVERS)
    adaptive = {m for m in tp.ode_methods() if tp.is_adaptive(m)}
    assert adaptive == {m for m, cls in SOLVERS.items() if issubclass(cls, RKAdaptiveStepsizeODESolver)}
    assert {"dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun"} <= adaptive
    assert not ({"euler", "rk4", "midpoint", "scipy_solver"} & adaptive) and not tp.is_adaptive("no-such-method")


def test_one_stability_tolerance_for_numpy_and_torch_spectra():
    values = np.array([-1.0 + 2.0j, -1.0 - 2.0j, -3.0])
    expected = np.sqrt(np.finfo(np.float64).eps) * 3.0
    assert tp.stability_tolerance(values) == expected
    batch = torch.tensor([[-1.0 + 2.0j, -1.0 - 2.0j, -3.0], [0.0, 0.0, 0.0]], dtype=torch.complex128)
    torch.testing.assert_close(tp.stability_tolerance(batch), torch.tensor([expected, expected / 3.0], dtype=DT))
    single = torch.tensor([[-4.0]], dtype=torch.float32)
    assert float(tp.stability_tolerance(single)[0]) == pytest.approx(np.sqrt(np.finfo(np.float32).eps) * 4.0)
    assert tp.stability_tolerance(np.zeros(2)) == np.sqrt(np.finfo(np.float64).eps)  # all-zero spectrum: scale 1


def test_statuses_are_one_vocabulary_spelled_one_way():
    assert tp.EquilibriumStatus.CONVERGED == "converged" and f"{tp.EquilibriumStatus.MAX_TIME}" == "max_time"
    assert str(tp.training.TrainingStatus.NUMERICAL_ERROR) == "numerical_error"
    from analysis import StabilityVerdict
    assert tp.EquilibriumStatus.UNSTABLE == StabilityVerdict.UNSTABLE == "unstable"
    for vocabulary in (tp.EquilibriumStatus, tp.training.TrainingStatus, StabilityVerdict):
        assert all(s.value.islower() and "-" not in s.value and " " not in s.value for s in vocabulary)


# -- the registry-wide suites enumerate their registry ---------------------------------------------------------------
def _parametrized_values(test, argument):
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0] == argument:
            return list(mark.args[1])
    raise AssertionError(f"{test.__name__} is not parametrized over {argument}")


@pytest.mark.parametrize("test, argument, registry", [
    (test_equilibrium.test_every_solver_finds_the_exact_fixed_point_of_a_linear_network, "solver",
     tp.EQUILIBRIUM_SOLVERS),
    (test_equilibrium.test_every_solver_finds_the_exact_fixed_point_of_a_linear_network, "form", tp.FEEDBACK_FORMS),
    (test_stability.test_every_abscissa_method_finds_the_exact_abscissa, "method", ABSCISSA_METHODS),
    (test_jacobian.test_assembled_equals_autograd_for_every_form_and_nonlinearity, "form", tp.FEEDBACK_FORMS),
    (test_jacobian.test_assembled_equals_autograd_for_every_form_and_nonlinearity, "nonlinearity",
     tp.NONLINEARITIES),
    (test_training_rules.test_weight_updates_preview_the_step_without_changing_anything, "method", LEARNING_RULES),
    (test_dynamics.test_every_dynamics_model_passes_the_contract_checks, "name", tp.DYNAMICS),
    (test_continuous.test_every_continuous_model_is_still_without_an_output_error, "name", CONTINUOUS_MODELS),
])
def test_registry_wide_suites_are_parametrized_by_the_registry(test, argument, registry):
    values = _parametrized_values(test, argument)
    assert set(registry.names()) <= set(values), (test.__name__, values)


# -- a new variant in each registry is covered by the same check; a broken one fails it ------------------------------
class AndersonMemoryTwo(tp.AndersonSolver):
    memory = 2


class ClaimsConvergence(tp.EquilibriumSolver):
    def solve(self, dynamics, initial, options):
        return tp.make_result(dynamics, initial, t=None, status=tp.EquilibriumStatus.CONVERGED, message="",
                              solver="broken", options=options)


class NumpyEigenvalues(AbscissaMethod):
    def spectrum(self, problem):
        return Spectrum(np.linalg.eigvals(problem.dense()), True, "numpy")


class ShiftedEigenvalues(AbscissaMethod):
    def spectrum(self, problem):
        return Spectrum(np.linalg.eigvals(problem.dense()) + 0.5, True, "shifted")


class LearnedAgain(tp.LearnedInverseFeedback):
    pass


class WrongJacobianFeedback(tp.LearnedInverseFeedback):
    def jacobian(self, h, layer):
        return 2.0 * super().jacobian(h, layer)


class DifferenceTPAgain(DifferenceTargetPropagationApproximateInverse):
    pass


class LearnsNothing(Backpropagation):
    def _step(self, network, h0, y, diagnostics):
        return StepRecord(loss=float(((network(h0)[-1] - y) ** 2).sum(-1).mean()), updated_layers=())


class MixtureAgain(tp.MixtureDynamics):
    pass


class WrongJacobianDynamics(tp.MixtureDynamics):
    def jacobian_blocks(self, state):
        J = super().jacobian_blocks(state)
        return tp.BlockTridiagonal([2.0 * d for d in J.diagonal], J.lower, J.upper)


class TwoPhaseAgain(TwoPhaseModel):
    pass


class AlwaysMoving(TwoPhaseModel):
    def weight_velocities(self, network, h0, label, *args, **kwargs):
        return [torch.ones_like(layer.weight) for layer in network.layers]


class SlopeOneFifth(tp.LeakyReLU):
    def __init__(self, negative_slope: float = 0.2):
        super().__init__(negative_slope)


class WrongDerivative(tp.LeakyReLU):
    def derivative(self, x):
        return torch.ones_like(x)


@pytest.mark.parametrize("registry, good, broken, check", [
    (tp.EQUILIBRIUM_SOLVERS, AndersonMemoryTwo, ClaimsConvergence,
     test_equilibrium.check_solver_finds_the_exact_fixed_point),
    (ABSCISSA_METHODS, NumpyEigenvalues, ShiftedEigenvalues, test_stability.check_abscissa_method),
    (tp.FEEDBACK_FORMS, LearnedAgain, WrongJacobianFeedback, test_jacobian.check_feedback_form),
    (LEARNING_RULES, DifferenceTPAgain, LearnsNothing, lambda name: test_training_rules.check_rules_learn([name])),
    (tp.DYNAMICS, MixtureAgain, WrongJacobianDynamics, test_dynamics.check_dynamics),
    (CONTINUOUS_MODELS, TwoPhaseAgain, AlwaysMoving, test_continuous.check_continuous_model),
    (tp.NONLINEARITIES, SlopeOneFifth, WrongDerivative, test_nonlinearities.check_nonlinearity),
], ids=lambda v: getattr(v, "family", None) if isinstance(v, tp.registry.Registry) else None)
def test_a_new_variant_is_covered_by_the_registry_wide_check(registry, good, broken, check):
    with registered(registry, "test-variant", good):
        assert "test-variant" in registry.names()
        check("test-variant")
    with registered(registry, "test-broken", broken):
        with pytest.raises(AssertionError):
            check("test-broken")
    assert "test-variant" not in registry.names() and "test-broken" not in registry.names()


def test_a_new_abscissa_method_is_used_by_the_report_and_the_abscissa():
    with registered(ABSCISSA_METHODS, "test-numpy", NumpyEigenvalues):
        alpha, used = spectral_abscissa(np.diag([-1.0, -2.0]), method="test-numpy")
        assert alpha == -1.0 and used == "numpy"
