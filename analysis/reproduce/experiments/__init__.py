"""The reproduced experiments; importing this package registers them all in ``EXPERIMENTS``."""
from . import (continuous, factorisation, gauss_newton, pseudo_inverse, sherman_morrison, stability,  # noqa: F401
               student_teacher, toy)

__all__ = ["continuous", "factorisation", "gauss_newton", "pseudo_inverse", "sherman_morrison", "stability",
           "student_teacher", "toy"]
