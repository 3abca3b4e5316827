"""The reproduced experiments; importing this package registers them all in ``EXPERIMENTS``."""
from . import continuous, sherman_morrison, stability  # noqa: F401
from . import student_teacher  # noqa: F401
from . import toy  # noqa: F401
from . import gauss_newton  # noqa: F401
from . import factorisation  # noqa: F401
from . import pseudo_inverse  # noqa: F401
