"""Train a network with difference target propagation (DTP) and with backprop, side by side.

Run:  python examples/train_dtp_vs_bp.py [OUTPUT_DIR]

The student-teacher task of thesis section 5.2.2 (6-6-6, leaky ReLU 0.35, linear output):
both methods start from the same student weights and see the same mini-batches. DTP-AI learns
its feedback weights Q (white-noise training, Alg. A.8) while the forward weights learn from
the targets hat h_i = h_i + g_i(hat h_(i+1)) - g_i(h_(i+1)) (eq. 4.101).
"""
import sys
from pathlib import Path

from analysis.training_plots import plot_loss_curves
from tpdynamics.training import compare_methods

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
out.mkdir(parents=True, exist_ok=True)

# Three methods on identical data and initialisations; hyper-parameters not given take the
# thesis's values for this experiment (figure 5.15: batch 32, eta_DTP = 0.1, eta_BP = 0.01, eta_hat = 0.1).
result = compare_methods(["dtp-ai", "bp", "bp-fixed"], task="student-teacher", layers=(6, 6, 6),
                         seeds=2, epochs=8, batches_per_epoch=30, diagnostics=True)

for name in ("dtp-ai", "bp", "bp-fixed"):
    r = result[name]
    print(f"{name:>8s}: test loss {r.test_loss[0]:8.2f} -> {r.test_loss[-1]:7.3f}  ({len(r.runs)} seeds, "
          f"{r.n_diverged} stopped early)")
# bp-fixed trains only the output layer: a method that beats it sends useful signals to the hidden layer.

result.write_json(out / "dtp_vs_bp.json")
result.write_csv(out / "dtp_vs_bp.csv")
plot_loss_curves(result, out / "dtp_vs_bp.png", title="DTP-AI vs BP on the student-teacher task")
print("wrote", out / "dtp_vs_bp.png", "and the JSON/CSV beside it")
