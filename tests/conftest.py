"""Test-session set-up.

Under pytest-xdist (the README's test command runs ``-n 2``) every worker process is one of the suite's
parallel processes, so it uses one intra-op torch thread, as the package's own worker pools do
(:mod:`tpdynamics.threads`); two workers with torch's default of one thread per core would oversubscribe
the cores and make the small-matrix work of these tests several times slower.

The files are handed to the workers longest first (``--dist loadfile`` keeps a file on one worker and
deals the files out in collection order, which :func:`pytest_collection_modifyitems` sets): the longest
files started last would leave one worker idle for a minute or more while the other finishes them.
"""
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: Seconds each of the longest files took (``--durations=0``, summed per file; 2 shared cores, 2 December 2026).
#: Only the order matters: a file not listed, or one that got faster, merely changes the balance, never a result.
_LONGEST_FILES = {
    "test_reproduce.py": 110, "test_classification_bands.py": 75, "test_sweep_dask.py": 60,
    "test_equilibrium.py": 54, "test_examples.py": 50, "test_resume.py": 37, "test_continuous.py": 25,
    "test_runs.py": 20, "test_ensemble.py": 16, "test_cli.py": 15, "test_classification_ensemble.py": 15,
    "test_equilibrium_stages.py": 11,
}


def pytest_configure(config):
    # xdist otherwise reorders the files by their number of tests, which says nothing about their duration
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items):
    """Longest files first (a stable sort: the tests of a file keep their order)."""
    items.sort(key=lambda item: -_LONGEST_FILES.get(item.path.name, 0))
