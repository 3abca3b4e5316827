"""Classification data without downloads: scikit-learn's digits, locally generated MNIST-1D, MNIST-style files.

* tasks — :func:`load_task` (``'digits'``, ``'mnist1d'``, ``'idx:PATH'``), registry :data:`DATA_SOURCES`,
  the fixed splits (table in :mod:`tpdynamics.data.tasks`);
* dataset — :class:`ClassificationData` (train / validation / test, standardised on the training split),
  :func:`one_hot`, :func:`split_and_standardise`;
* files — :func:`read_idx`, :func:`write_idx`, :func:`load_image_files`, :class:`CorruptDataError`;
* cache — :func:`cache_folder` (``$TPDYNAMICS_CACHE``, ``$XDG_CACHE_HOME/tpdynamics``, ``~/.cache/tpdynamics``).

``digits`` and ``mnist1d`` need the ``data`` extra (``pip install 'tpdynamics[data]'``).
"""
from .cache import cache_folder, cached_arrays
from .dataset import ClassificationData, one_hot, split_and_standardise
from .files import CorruptDataError, load_image_files, read_idx, write_idx
from .tasks import DATA_SOURCES, DataSource, load_task, parse_task, task_names

__all__ = ["cache_folder", "cached_arrays", "ClassificationData", "one_hot", "split_and_standardise",
           "CorruptDataError", "load_image_files", "read_idx", "write_idx", "DATA_SOURCES", "DataSource", "load_task",
           "parse_task", "task_names"]
