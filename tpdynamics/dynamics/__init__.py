"""Network dynamics as torchdiffeq-ready ``nn.Module``s (registry :data:`DYNAMICS`)."""
from .base import DYNAMICS, NetworkDynamics
from .mixture import MixtureDynamics

__all__ = ["DYNAMICS", "NetworkDynamics", "MixtureDynamics"]
