"""Test-session set-up.

Under pytest-xdist (the README's test command runs ``-n 2``) every worker process is one of the suite's
parallel processes, so it uses one intra-op torch thread, as the package's own worker pools do
(:mod:`tpdynamics.threads`); two workers with torch's default of one thread per core would oversubscribe
the cores and make the small-matrix work of these tests several times slower.
"""
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
