"""A classification data set split into training, validation and test sets, standardised on the training set.

:class:`ClassificationData` holds the three splits as tensors (inputs ``(N, n_0)`` float, labels
``(N,)`` int64 class indices ``0..K-1``); :func:`split_and_standardise` makes one from arrays with a
seeded permutation and per-feature standardisation fitted on the training split only (the
validation and test inputs are transformed with the training mean and standard deviation, so no
statistic of the held-out samples leaks into training).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..validation import check_int

__all__ = ["ClassificationData", "one_hot", "split_and_standardise"]

#: A feature whose training-set standard deviation is below this (e.g. a pixel that is always 0) is only
#: centred: dividing by ~0 would turn rounding noise into huge inputs.
MIN_STD = 1e-8


@dataclass
class ClassificationData:
    """Training, validation and test splits of one classification data set.

    Attributes
    ----------
    name : str
        The task spec that made it (``"digits"``, ``"mnist1d"``, ``"idx:PATH"``).
    train_inputs, val_inputs, test_inputs : Tensor, shape (N_split, n_0)
        Standardised inputs ``(x - mean_train) / std_train``.
    train_labels, val_labels, test_labels : Tensor, shape (N_split,), int64
        Class indices in ``0..n_classes-1``.
    n_classes : int
    mean, std : Tensor, shape (n_0,)
        The training split's per-feature statistics used to standardise every split (``std`` is 1 for
        constant features).
    info : dict
        Provenance: source, sizes, seeds, cache file.
    """

    name: str
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    val_inputs: torch.Tensor
    val_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    n_classes: int
    mean: torch.Tensor
    std: torch.Tensor
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        """``n_0``, the input dimension."""
        return int(self.train_inputs.shape[1])

    @property
    def sizes(self) -> dict:
        """``{"train": N_train, "validation": N_val, "test": N_test}``."""
        return {"train": int(self.train_labels.shape[0]), "validation": int(self.val_labels.shape[0]),
                "test": int(self.test_labels.shape[0])}

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, labels)`` of ``'train'``, ``'validation'`` or ``'test'``."""
        splits = {"train": (self.train_inputs, self.train_labels), "validation": (self.val_inputs, self.val_labels),
                  "test": (self.test_inputs, self.test_labels)}
        if name not in splits:
            raise ValueError(f"split={name!r} is not valid; use one of {', '.join(splits)}.")
        return splits[name]

    def describe(self) -> dict:
        """JSON-ready description: name, sizes, features, classes and :attr:`info`."""
        return {"task": self.name, "sizes": self.sizes, "n_features": self.n_features, "n_classes": self.n_classes,
                **self.info}


def one_hot(labels: torch.Tensor, n_classes: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """One-hot targets ``y`` (the thesis's regression labels for MSE), shape ``(N, n_classes)``."""
    return torch.nn.functional.one_hot(labels, n_classes).to(dtype)


def split_and_standardise(name: str, inputs: np.ndarray, labels: np.ndarray, *, n_val: int, n_test: int, seed: int,
                          test_indices: np.ndarray | None = None, dtype: torch.dtype = torch.float64,
                          info: dict | None = None) -> ClassificationData:
    """Split ``(inputs, labels)`` into train / validation / test and standardise on the training split.

    Parameters
    ----------
    inputs : ndarray, shape (N, n_0)
    labels : ndarray, shape (N,)
        Integer classes ``0..K-1`` (``K = labels.max() + 1``).
    n_val, n_test : int
        Sizes of the validation and test splits; the training split is the rest.
    seed : int
        Seed of the permutation (``numpy.random.default_rng([seed, 15])``): the same seed gives the same splits.
    test_indices : ndarray, optional
        A fixed test set (e.g. the test files of MNIST); then ``n_test`` is ignored and the validation
        split is drawn from the other samples.

    Returns
    -------
    ClassificationData
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if inputs.ndim != 2 or labels.shape != (inputs.shape[0],):
        raise ValueError(f"inputs must be (N, n_0) and labels (N,), got {inputs.shape} and {labels.shape}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, got the minimum {labels.min()}.")
    rng = np.random.default_rng([check_int("seed", seed, minimum=0), 15])
    n = inputs.shape[0]
    if test_indices is None:
        n_test = check_int("n_test", n_test, minimum=1)
        order = rng.permutation(n)
        test, rest = order[:n_test], order[n_test:]
    else:
        test = np.asarray(test_indices)
        rest = np.setdiff1d(np.arange(n), test)
        rest = rest[rng.permutation(rest.size)]
    n_val = check_int("n_val", n_val, minimum=1)
    if rest.size <= n_val:
        raise ValueError(f"{name}: {n} samples leave {rest.size} after the test split, not more than n_val={n_val}; "
                         "lower n_val or n_test.")
    val, train = rest[:n_val], rest[n_val:]
    mean = inputs[train].mean(0)
    std = inputs[train].std(0)
    std = np.where(std < MIN_STD, 1.0, std)

    def tensor(index):
        x = torch.as_tensor((inputs[index] - mean) / std, dtype=dtype)
        return x, torch.as_tensor(labels[index], dtype=torch.long)

    (xtr, ytr), (xva, yva), (xte, yte) = tensor(train), tensor(val), tensor(test)
    return ClassificationData(name=name, train_inputs=xtr, train_labels=ytr, val_inputs=xva, val_labels=yva,
                              test_inputs=xte, test_labels=yte, n_classes=int(labels.max()) + 1,
                              mean=torch.as_tensor(mean, dtype=dtype), std=torch.as_tensor(std, dtype=dtype),
                              info={"split_seed": int(seed), **(info or {})})
