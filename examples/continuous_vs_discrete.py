"""Continuous weight dynamics (thesis chapter 6) against discrete target propagation (chapter 4).

Run:  python examples/continuous_vs_discrete.py [OUTPUT_DIR]

The single-phase network of section 6.4 learns with dW_i/dt = eta_i D_i (h*_i - f_i(h*_(i-1))) h*_(i-1)^T
at equilibrium (eq. 6.17). Divided by the layer factor (mu/(1-mu))^(L+1-i) this is the TP-EI update
(eq. 6.19). We check that on one batch, then let both learn the same samples.
"""
import sys
from pathlib import Path

from analysis.comparisons import discrete_update, learning_trajectories
from tpdynamics.continuous import get_model
from tpdynamics.training import student_teacher

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
out.mkdir(parents=True, exist_ok=True)

# 1. One sample, one update: continuous velocity / layer factor vs the discrete TP-EI step (same eta_hat).
problem = student_teacher((6, 6, 6), n_train=10, n_test=10, seed=0)
network = problem.student("exact")                        # exact inverses, kept by Sherman-Morrison
x, y = problem.train_inputs[:1], problem.train_labels[:1]
discrete = discrete_update("tp-ei", network, x, y, eta=1.0, eta_hat=0.01)
for mu in (0.2, 0.05):
    model = get_model("single_phase", mu=mu, eta_hat=0.01, compensate_layer_factor=True)
    continuous = model.weight_velocities(network, x, y)   # neurons at equilibrium, eq. 6.17 / c_i
    errors = [float((c - d).norm() / d.norm()) for c, d in zip(continuous, discrete)]
    print(f"mu = {mu}: relative difference to the TP-EI update per layer: {[f'{e:.1e}' for e in errors]}")

# 2. Learning curves with matched budgets (learning rate x steps = integrated time).
result = learning_trajectories(seeds=2, steps=100, record_every=20, n_test=200)
for name, curve in result.curves.items():
    low, high = curve["ci"][-1]  # 95 % interval of the geometric mean, computed on the log scale: positive
    print(f"{name:>10s}: test loss {curve['centre'][0]:.1f} -> {curve['centre'][-1]:.1f} "
          f"(geometric mean of 2 seeds, 95 % interval [{low:.3g}, {high:.3g}])")
result.to_json(out / "continuous_vs_discrete.json")
print("wrote", result.save_figure(out / "continuous_vs_discrete.png"))
