"""Integrate a target-propagation network to equilibrium and plot how it gets there.

Run:  python examples/integrate_to_equilibrium.py [OUTPUT_DIR]

A 6-6-6-6 network with exact inverses (thesis section 6.4) receives a teaching signal on its
output (eq. 6.10). We let the mixture dynamics of eq. 6.1 settle, compare the three solvers,
and check the thesis's prediction that the signal reaching layer i is scaled by
(mu / (1 - mu))^(L + 1 - i) (eq. 6.16).
"""
import sys
from pathlib import Path

import torch

import tpdynamics as tp
from analysis.plotting import plot_trajectory
from tpdynamics.theory import mixture_displacement_first_order

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
out.mkdir(parents=True, exist_ok=True)

# 1. A network: input h_0 of size 6, three layers of 6 units; leaky ReLU hidden, linear output.
network = tp.LayeredNetwork.build([6, 6, 6, 6], nonlinearity="leaky_relu:0.35", output_nonlinearity="identity",
                                  feedback="exact", weight_init="orthogonal", seed=0)

# 2. Inputs and labels (batch-first), and the dynamics tau dh/dt = -h + (1-mu) f(h_below) + mu g(h_above).
generator = tp.make_generator(1)
h0 = torch.randn(8, 6, generator=generator, dtype=torch.float64)
with torch.no_grad():
    label = network(h0)[-1] + torch.randn(8, 6, generator=generator, dtype=torch.float64)
dynamics = tp.MixtureDynamics(network, h0, mu=0.2, tau=1.0, label=label, eta_hat=0.1)

# 3. Equilibrium: the default solver (Anderson -> Newton -> ODE) and plain integration agree.
with torch.no_grad():
    fast = tp.equilibrium(dynamics, tol=1e-10)
    slow = tp.equilibrium(dynamics, tol=1e-10, solver="ode")
print(f"default solver: {fast.solver}, {fast.nfev} evaluations; ODE: t={slow.t:.1f}, {slow.nfev} evaluations; "
      f"max difference {float((fast.state - slow.state).abs().max()):.1e}")

# 4. The learning signal per layer against the first-order prediction of eq. 6.16.
with torch.no_grad():
    layers = [h0] + fast.layers
    predicted = mixture_displacement_first_order(network, h0, label, mu=0.2, eta_hat=0.1)
    for i in range(1, network.depth + 1):
        measured = layers[i] - network.layer(i)(layers[i - 1])
        print(f"layer {i}: |h*_i - f_i(h*_(i-1))| = {measured.norm():.3e}   eq. 6.16: {predicted[i - 1].norm():.3e}")

# 5. The approach to equilibrium, as a figure.
with torch.no_grad():
    trajectory = tp.integrate(dynamics, torch.linspace(0, slow.t, 200), rtol=1e-10, atol=1e-12)
print("wrote", plot_trajectory(trajectory, dynamics, out / "trajectory.png"))
