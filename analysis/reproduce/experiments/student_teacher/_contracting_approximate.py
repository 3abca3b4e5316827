"""Figures 5.18-5.19: the approximate-inverse methods on a contracting network (6-6-4)."""
from __future__ import annotations

from ...base import EXPERIMENTS, Claim, fmt_ci
from ._equal_approximate import _AI_THESIS_COMMON, StudentTeacherEqualApproximateInverses
from ._statistics import _all, _both, _extreme, _f
from ._training import _label


@EXPERIMENTS.register("fig5.18-5.19-contracting-ai")
class StudentTeacherContractingApproximateInverses(StudentTeacherEqualApproximateInverses):
    """Figures 5.18–5.19: the approximate-inverse methods on a contracting network 6-6-4 (no exact inverse exists)."""

    title = "Student-teacher regression with approximate inverses, contracting layers 6-6-4"
    reference = "figures 5.18-5.19, section 5.2.2"
    thesis_says = (_AI_THESIS_COMMON + "Network n0 = n1 = 6, n2 = 4 (the figure script: n2 = 3, used here); figure 5.18: eta_init TP-AI = 0.09, DTP-AI = "
                   "original-DTP = 0.1, original-TP = 0.005, BP = BP-fixed = 0.05 (randomized variants shown). "
                   "\"there is "
                   "a decrease in performance of for RTP-AI and original-RTP\", whose h_hat_1 - h_1 \"does not align "
                   "with "
                   "the useful learning signal e_TP due to the reconstruction error\"; for RDTP-AI \"the propagated "
                   "learning "
                   "signal is still perfectly aligned with e_TP\" and \"also perfectly aligned with the Gauss-Newton "
                   "learning signal e_GN\", yet its performance decreased to \"comparable with original-DTP\"; \"for "
                   "contracting networks, it is necessary to use methods such as difference target propagation\".")
    full = {**StudentTeacherEqualApproximateInverses.full, "preset": "5.2.2-contracting"}
    quick = {**StudentTeacherEqualApproximateInverses.quick, "preset": "5.2.2-contracting"}
    full_slot_seconds = 14.2  # 3 December 2026 (169 redraws)
    FIGURES = ("train MSE (not randomized)", "test MSE (not randomized)", "train MSE (randomized)",
               "5.18a test MSE (randomized)", "e_approx", "5.18b", "5.19a", "5.19b")
    STABILITY = ("All runs are usable: the thesis averages 15 runs per method and reports no unstable run for "
                 "figures 5.18-5.19.")

    #: The figure script ran the randomized variants (figs 5.18-5.19); the not-randomized ones are extra here.
    GROUPS = ("not randomized (not in the thesis)", "figures 5.18-5.19: randomized")

    def result_claims(self, view, signals) -> list:
        """The claims after the stability claim: signal alignment (figures 5.18b-5.19b), then final losses (5.18a)."""
        claims = []
        cos_tp = {m: self.late(signals, m, "cos_signal_tp") for m in signals}
        tp_like, dtp_like = ("rtp-ai", "rtp-orig", "tp-ai", "tp-orig"), ("rdtp-ai", "rdtp-orig", "dtp-ai", "dtp-orig")
        claims.append(Claim(
            "In the contracting network the reconstruction error cannot vanish: RTP-AI's and original-RTP's h_hat_1 - "
            "h_1 \"does not align with the useful learning signal e_TP\", while RDTP-AI's \"is still perfectly "
            "aligned with e_TP\" (figure 5.18b).",
            "cos(h_hat_1 - h_1, e_TP_1), last third, mean over seeds: " + ", ".join(
                f"{_label(m)} {_f(cos_tp[m])}" for m in tp_like + dtp_like)
            + " (criterion: TP-like < 0.9, DTP-like > 0.99, over the methods with a run past epoch 1).",
            holds=_both(_all([cos_tp[m] for m in tp_like], lambda v: v < 0.9),
                        _all([cos_tp[m] for m in dtp_like], lambda v: v > 0.99)),
            robust=True, values=cos_tp))
        cos_gn = {m: self.late(signals, m, "cos_signal_gn") for m in signals}
        claims.append(Claim(
            "RDTP-AI's signal is \"also perfectly aligned with the Gauss-Newton learning signal e_GN\" (figure "
            "5.19a), unlike the original-DTP variants (whose g_i cannot learn the pseudo-inverse).",
            "cos(h_hat_1 - h_1, e_GN_1), last third: " + ", ".join(f"{_label(m)} {_f(cos_gn[m])}" for m in signals)
            + f"; RDTP-AI per seed {fmt_ci(signals['rdtp-ai']['cos_signal_gn_late'], 4)} (criterion: RDTP-AI and "
              "DTP-AI > 0.95 and above original-RDTP / original-DTP).",
            holds=_all([cos_gn["rdtp-ai"], cos_gn["dtp-ai"]],
                       lambda v: v > max(0.95, _extreme([cos_gn["rdtp-orig"], cos_gn["dtp-orig"]], max))),
            robust=False, values=cos_gn))
        cos_bp = {m: self.late(signals, m, "cos_signal_bp") for m in signals}
        claims.append(Claim(
            "The DTP variants' learning signals are descent directions: cos(h_hat_1 - h_1, e_BP_1) > 0 (figure 5.19b).",
            "last third: " + ", ".join(f"{_label(m)} {_f(cos_bp[m], '+.3f')}" for m in dtp_like)
            + " (criterion: all > 0).",
            holds=_all([cos_bp[m] for m in dtp_like], lambda v: v > 0), robust=True,
            values={m: cos_bp[m] for m in dtp_like}))
        claims.append(self.ordering(
            view, "\"for contracting networks, it is necessary to use methods such as difference target propagation "
            "that cancel out the reconstruction errors\": RTP-AI and original-RTP end worse than RDTP-AI and "
            "original-RDTP (figure 5.18a).", ("rdtp-ai", "rdtp-orig"), ("rtp-ai", "rtp-orig"), robust=False))
        claims.append(self.similar(view, "rdtp-ai", "rdtp-orig", "RDTP-AI \"now has a performance comparable with "
                                   "original-DTP\" (figure 5.18a; the thesis compares with the randomized original-DTP "
                                   "curve).", factor=2.0, robust=False))
        others = tuple(m for m in view.groups[self.GROUPS[1]] if m != "bp")  # the methods of figure 5.18a
        claims.append(self.ordering(view, "BP outperforms all other methods (figure 5.18a).", "bp", others,
                                    robust=False))
        return claims
