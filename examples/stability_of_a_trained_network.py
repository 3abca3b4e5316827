"""Stability report of a network after training: is its fixed point stable, how fast does it settle?

Run:  python examples/stability_of_a_trained_network.py [OUTPUT_DIR]

We train the 6-6-6 student of section 5.1.3 with exact inverses (TP-EI, Alg. A.4) for a few hundred samples, then put
the trained layers into the mixture dynamics of eq. 6.1 and ask analysis.stability_report about the
fixed point (thesis section 6.7): eigenvalues, the Hurwitz verdict, whether the Jacobian is negative
definite (the thesis's wording) or only Hurwitz, transient growth, and the closed-form spectrum.
"""
import sys
from pathlib import Path

import torch

import analysis
import tpdynamics as tp
from tpdynamics.training import get_learning_rule, mean_squared_error, student_teacher

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
out.mkdir(parents=True, exist_ok=True)

# 1. Train: the same Layer objects that the dynamics will use.
problem = student_teacher((6, 6, 6), n_train=1000, n_test=200, seed=0)
network = problem.student("exact")
rule = get_learning_rule("tp-ei", eta=0.01, eta_hat=0.1)  # the thesis's rates (figure 5.7)


def test_loss():
    with torch.no_grad():
        return mean_squared_error(network(problem.test_inputs)[-1], problem.test_labels)


before = test_loss()
for k in range(1000):
    rule.step(network, problem.train_inputs[k:k + 1], problem.train_labels[k:k + 1])
print(f"1000 TP-EI steps: test loss {before:.4g} -> {test_loss():.4g}")

# 2. The trained network as a dynamical system, nudged towards the labels of a few test inputs.
h0, y = problem.test_inputs[:4], problem.test_labels[:4]
dynamics = tp.MixtureDynamics(network, h0, mu=0.2, label=y, eta_hat=0.1)
fixed = tp.equilibrium(dynamics, tol=1e-10, check_stability=True)
print(f"fixed point: {fixed.status}; spectral abscissa per sample {fixed.spectral_abscissa.tolist()}")

# 3. The full report for sample 0.
report = analysis.stability_report(dynamics, fixed.state, sample=0)
print(report.to_text())
report.to_json(out / "stability.json")
print("wrote", report.save_figure(out / "stability.png"))
