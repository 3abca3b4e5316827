"""``device=`` of the dynamics modules and the equilibrium solvers (issue 14); the CUDA checks skip without CUDA."""
import pytest
import torch

from tpdynamics import LayeredNetwork, MixtureDynamics, MultiplexedDynamics, equilibrium
from tpdynamics.ensemble import EnsembleNetwork
from tpdynamics.ensemble.continuous import EnsembleContinuousLearner
from tpdynamics.training import ContinuousLearner

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
SOLVERS = ["auto", "sor", "map", "anderson", "newton", "ode"]


def _problem(feedback="exact"):
    net = LayeredNetwork.build((4, 4, 4), output_nonlinearity="identity", feedback=feedback, seed=3)
    g = torch.Generator().manual_seed(0)
    return net, torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)


def test_device_argument_is_checked():
    net, x, y = _problem()
    with pytest.raises(ValueError, match="device='nonsense' is not a torch device"):
        MixtureDynamics(net, x, mu=0.1, device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs CUDA"):
            MixtureDynamics(net, x, mu=0.1, device="cuda")
    with pytest.raises(ValueError, match="the network's weights are on 'cpu'; move the network first"):
        MultiplexedDynamics(net, x, device="meta")
    dynamics = MixtureDynamics(net, x, mu=0.1, label=y, eta_hat=0.1, device="cpu")
    assert dynamics.device == torch.device("cpu")
    with pytest.raises(ValueError, match="device='meta' but the dynamics compute on 'cpu'"):
        equilibrium(dynamics, device="meta")
    assert equilibrium(dynamics, tol=1e-9, device="cpu").success


@needs_cuda
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("model", ["mixture", "multiplexed"])
def test_solvers_on_cuda_equal_cpu(solver, model):
    net, x, y = _problem()
    build = (lambda n, **kw: MixtureDynamics(n, x, mu=0.2, label=y, eta_hat=0.1, **kw)) if model == "mixture" else \
        (lambda n, **kw: MultiplexedDynamics(n, x, label=y, eta_hat=0.1, **kw))
    cpu = equilibrium(build(net), tol=1e-9, solver=solver)
    gpu_net = LayeredNetwork.build((4, 4, 4), output_nonlinearity="identity", feedback="exact", seed=3).to("cuda")
    dynamics = build(gpu_net, device="cuda")
    gpu = equilibrium(dynamics, tol=1e-9, solver=solver, device="cuda")
    assert gpu.success and gpu.state.device.type == "cuda"
    assert torch.allclose(gpu.state.cpu(), cpu.state, atol=1e-7, rtol=0)


@needs_cuda
def test_continuous_ensemble_on_cuda_equals_cpu():
    def run(device):
        nets = [LayeredNetwork.build((4, 5, 3), output_nonlinearity="identity", feedback="learned", seed=s)
                for s in range(3)]
        ensemble = EnsembleNetwork(nets, device=device)
        learner = EnsembleContinuousLearner([ContinuousLearner("two-phase", eta=0.05, eta_backward=0.01, tol=1e-10)
                                             for _ in range(3)], ensemble)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            learner.step(torch.randn(3, 4, 4, generator=g, dtype=torch.float64),
                         torch.randn(3, 4, 3, generator=g, dtype=torch.float64))
        return [w.cpu() for w in ensemble.weights]

    for a, b in zip(run("cpu"), run("cuda")):
        assert torch.allclose(a, b, atol=1e-7, rtol=0)
