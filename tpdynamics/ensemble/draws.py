"""The per-member random draws of :class:`~tpdynamics.ensemble.EnsembleTrainer`: the white noise of Alg. A.8.

Torch generators cannot be batched, and a batched draw would give other numbers, so each member draws
from its own generator, in the serial order; what can be saved is the number of calls and tensors:
one draw per member and epoch where that gives the same numbers (:meth:`MemberDraws.predraw_noise`),
else one per member and step for all layers, written into kept per-member slots of one buffer.
"""
from __future__ import annotations

import torch

from ..layers import LearnedInverseFeedback


def _on(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` (no op where it is there already: a CPU ensemble)."""
    return tensor if tensor.device == device else tensor.to(device)


class MemberDraws:
    """Mixin of :class:`~tpdynamics.ensemble.EnsembleTrainer` (its ``rules``, ``network``, ``backward_on``, ...)."""

    def _draw_layer_noise(self, batch: int, n: int) -> torch.Tensor:
        """``sigma h`` of one layer for every member, ``(S, B, n)``: one draw per member, stacked."""
        h = self._normal(("noise", batch, n), (batch, n))
        return h if self._unit_noise else self.noise_std * h  # sigma = 1: the product is exact

    def _normal(self, key, shape) -> torch.Tensor:
        """Each member's ``torch.randn(*shape, generator=...)`` (``empty(shape).normal_()``: the same numbers) written
        into its slot of one ``(S, *shape)`` buffer, zeros for members with ``eta^b = 0``; on the device."""
        buffer, slots = self._buffer(key, shape, self.network.dtype)
        for slot, r, on in zip(slots, self.rules, self.backward_on):
            if on:
                slot.normal_(generator=r.generator)
            else:
                slot.zero_()
        return _on(buffer, self.network.device)

    def _buffer(self, key, shape, dtype) -> tuple:
        """A kept CPU buffer ``(S, *shape)`` and its member slots (contiguous views; the generators are CPU ones).

        Its values are read within the step that writes them only, so one buffer serves every step.
        """
        if key not in self._buffers:
            buffer = torch.zeros((self.size, *shape) if shape else (self.size,), dtype=dtype)
            slots = [buffer[s] if shape else buffer[s:s + 1] for s in range(self.size)]
            self._buffers[key] = buffer, slots
        return self._buffers[key]

    def _draw_noise(self, batch: int) -> dict | None:
        """This step's white noise of Alg. A.8 for every learned ``Q_i``, one draw per member (not one per layer).

        Where every layer's draw has a multiple of 16 values, one draw of their total is the concatenation
        of the per-layer draws (the property :meth:`predraw_noise` relies on; the oracle tests check it).
        Returns ``{i: (S, B, n_i)}`` (already times sigma), or ``None``: draw per layer.
        """
        net = self.network
        learned = [i for i in range(1, self.depth) if net.kinds[i] is LearnedInverseFeedback]
        if len(learned) < 2 or any(batch * net.layer_sizes[i] % 16 for i in learned):
            return None  # one layer: nothing to merge
        total = sum(batch * net.layer_sizes[i] for i in learned)
        flat = self._normal(("noise", total), (total,))
        out, start = {}, 0
        for i in learned:
            n = net.layer_sizes[i]
            out[i] = self.noise_std * flat[:, start:start + batch * n].view(-1, batch, n)
            start += batch * n
        return out

    def predraw_noise(self, steps: int, batch: int) -> bool:
        """Draw the white noise of Alg. A.8 for the next ``steps`` steps at once (one call per member).

        Only where it gives the very numbers of the per-step draws: the rule's generator serves A.8 alone
        (not a randomized rule, whose layer choice draws from it in between), and every per-step draw has a
        multiple of 16 values, for which torch's CPU normal sampler fills blocks of 16 from the stream in
        order, so one long draw is the concatenation of the short ones (the oracle tests check it).
        Returns whether it did; otherwise the steps draw per member as before.
        """
        net, rule = self.network, self.rules[0]
        self._noise = None
        learned = [i for i in range(1, self.depth) if net.kinds[i] is LearnedInverseFeedback]
        if (self.family != "tp" or rule.backward != "A.8" or self.randomized or not learned
                or any(batch * net.layer_sizes[i] % 16 for i in learned) or not any(self.backward_on)):
            return False
        self._noise_offsets, total = {}, 0
        for i in learned:
            self._noise_offsets[i] = total
            total += batch * net.layer_sizes[i]
        draws = [torch.randn(steps * total, generator=r.generator, dtype=net.dtype) if on
                 else torch.zeros(steps * total, dtype=net.dtype) for r, on in zip(self.rules, self.backward_on)]
        # sigma h as the step would form it (an element-wise product, so the same numbers)
        self._noise = self.noise_std.view(-1, 1, 1) * torch.stack(draws).view(self.size, steps, total).to(net.device)
        self._noise_cursor = 0
        return True

