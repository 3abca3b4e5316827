"""Network dynamics as torchdiffeq-ready ``nn.Module``s (registry :data:`DYNAMICS`)."""
from .base import DYNAMICS, NetworkDynamics
from .mixture import MixtureDynamics
from .multiplexed import MultiplexedDynamics

__all__ = ["DYNAMICS", "NetworkDynamics", "MixtureDynamics", "MultiplexedDynamics"]
