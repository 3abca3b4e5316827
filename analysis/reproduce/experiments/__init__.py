"""The reproduced experiments; importing this package registers them all in ``EXPERIMENTS``."""
from . import continuous, sherman_morrison  # noqa: F401
