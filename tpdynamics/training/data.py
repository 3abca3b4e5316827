"""Data for the discrete experiments: noise sources, the student–teacher problem and the toy example.

* :class:`WhiteNoise` / :class:`ColouredNoise` — the inputs of backward-weight training
  (Alg. A.8, Thms 4.6-4.7) and of the pseudo-inverse experiments (figs 5.9-5.10);
* :func:`student_teacher` — the non-linear regression problems of sections 5.1.3 and 5.2.2: a
  random teacher network of the given architecture labels white-noise inputs, and the student
  starts with every weight matrix at Frobenius distance 8.0 from the teacher's;
* :func:`toy_example` — the 1-2-2 network of section 5.1.1 (figs 5.2-5.4) with ``W_2`` fixed.

All randomness comes from explicit ``torch.Generator`` objects seeded from ``seed``.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..validation import check_int, check_memory, check_positive
from ..errors import SingularWeightError
from ..layers import FEEDBACK_FORMS, Layer
from ..network import LayeredNetwork, make_generator
from ..nonlinearities import get_nonlinearity
from ..sherman_morrison import robust_gaussian_matrix, singular_value_product

#: Purposes of the generators derived from a run's seed (see :func:`derived_seed`).
SEED_PURPOSES = ("weights", "train", "test", "feedback", "rule", "shuffle")


def derived_seed(seed: int, purpose: str) -> int:
    """``seed * 1_000_003 + k`` for the ``k``-th entry of :data:`SEED_PURPOSES`: independent, collision-free streams.

    The weights, the training set, the test set, a fixed random feedback, a rule's randomness and
    the shuffling of the training set each get their own generator, so that changing one (e.g. the
    size of the training set) leaves the others unchanged.
    """
    return (check_int("seed", seed) * 1_000_003 + SEED_PURPOSES.index(purpose)) % (2 ** 63)


class NoiseSource(abc.ABC):
    """Abstract source of zero-mean Gaussian activity ``h`` of dimension :attr:`dim`."""

    dim: int

    @abc.abstractmethod
    def sample(self, batch: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``batch`` samples, shape ``(batch, dim)``."""
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def covariance(self) -> torch.Tensor:
        """The covariance ``Gamma`` of ``h``, shape ``(dim, dim)``."""
        raise NotImplementedError


class WhiteNoise(NoiseSource):
    """White noise ``h ~ N(0, sigma^2 I)`` (uncorrelated, equal variances: the condition of Thms 4.6-4.7).

    Parameters
    ----------
    dim : int
    std : float
        ``sigma``; the regularised solution of Thm 4.7 depends on ``lambda / sigma^2``.
    """

    def __init__(self, dim: int, std: float = 1.0):
        self.dim = check_int("dim", dim, minimum=1)
        self.std = check_positive("std", std)

    def sample(self, batch, *, generator=None, dtype=torch.float64):
        return self.std * torch.randn(batch, self.dim, generator=generator, dtype=dtype)

    @property
    def covariance(self):
        return self.std ** 2 * torch.eye(self.dim, dtype=torch.float64)

    def __repr__(self):
        return f"WhiteNoise(dim={self.dim}, std={self.std:g})"


class ColouredNoise(NoiseSource):
    """Coloured noise ``h = C z`` with ``z ~ N(0, I_m)`` and a fixed mixing matrix ``C`` (figs 5.9-5.10).

    The covariance ``C C^T`` is of full rank only if ``m >= dim`` and ``C`` has full row rank.

    Parameters
    ----------
    mixing : Tensor, shape (dim, m)
        ``C``.
    """

    def __init__(self, mixing: torch.Tensor):
        if not isinstance(mixing, torch.Tensor) or mixing.ndim != 2:
            raise ValueError(f"mixing must be a 2-D tensor C of shape (dim, m), got "
                             f"{getattr(mixing, 'shape', type(mixing).__name__)}.")
        self.mixing = mixing.detach().clone()
        self.dim = mixing.shape[0]

    @classmethod
    def random(cls, dim: int, rank: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> "ColouredNoise":
        """``C`` a standard Gaussian ``dim x rank`` matrix, as in figure 5.9."""
        check_int("dim", dim, minimum=1)
        check_int("rank", rank, minimum=1)
        return cls(torch.randn(dim, rank, generator=generator, dtype=dtype))

    def sample(self, batch, *, generator=None, dtype=torch.float64):
        z = torch.randn(batch, self.mixing.shape[1], generator=generator, dtype=dtype)
        return z @ self.mixing.to(dtype).T

    @property
    def covariance(self):
        return self.mixing @ self.mixing.T

    def __repr__(self):
        return f"ColouredNoise(dim={self.dim}, rank={self.mixing.shape[1]})"


def neighbour_matrix(matrix: torch.Tensor, distance: float, *, threshold: float = 0.4,
                     generator: torch.Generator | None = None, max_tries: int = 1000) -> torch.Tensor:
    """``W* + distance G / ||G||_F`` with ``G`` standard normal, redrawn until ``sigma_min sigma_max > threshold``.

    The student initialisation of sections 5.1.3 and 5.2.2: every student matrix lies at
    Frobenius distance exactly ``distance`` from the teacher's (8.0 in the thesis, about the
    mean distance between two standard Gaussian 6x6 matrices), and is robustly invertible
    (section 4.2.3, criterion on ``sigma_min sigma_max``).

    Parameters
    ----------
    matrix : Tensor, shape (n_i, n_{i-1})
        The teacher's weight ``W*``.
    distance : float
        Frobenius distance ``||W - W*||_F`` of the result (8.0 in the thesis).
    threshold : float
        Required ``sigma_min sigma_max`` of the result; 0 accepts the first draw.
    generator : torch.Generator, optional
    max_tries : int
        Number of draws before giving up.

    Returns
    -------
    Tensor, shape (n_i, n_{i-1})

    Raises
    ------
    SingularWeightError
        If no draw passes in ``max_tries`` attempts.
    """
    check_positive("distance", distance, allow_zero=True)
    for _ in range(max_tries):
        direction = torch.randn(matrix.shape, generator=generator, dtype=matrix.dtype)
        candidate = matrix + distance * direction / direction.norm()
        if threshold == 0 or singular_value_product(candidate) > threshold:
            return candidate
    raise SingularWeightError(
        f"No student matrix at distance {distance} from the teacher's had sigma_min sigma_max > {threshold} in "
        f"{max_tries} draws; lower init_threshold or change the distance.")


@dataclass
class StudentTeacherProblem:
    """A regression problem labelled by a teacher network, with the student's initial weights.

    Attributes
    ----------
    teacher : LayeredNetwork
        The teacher (no feedback mappings); ``y = h_L`` of the teacher.
    student_weights : tuple of Tensor
        Initial student weights ``W_1..W_L``, shapes ``(n_i, n_{i-1})``.
    train_inputs, train_labels : Tensor
        Training set, shapes ``(N_train, n_0)`` and ``(N_train, n_L)``.
    test_inputs, test_labels : Tensor
        Test set, shapes ``(N_test, n_0)`` and ``(N_test, n_L)``.
    seed : int
        Seed everything was drawn from.
    trainable_layers : tuple of int or None
        Layers a learning rule may train (``None``: all; the toy example fixes ``W_2``).
    name : str
        ``"student-teacher"`` or ``"toy-linear"`` / ``"toy-leaky-relu"``.
    """

    teacher: LayeredNetwork
    student_weights: tuple
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    seed: int
    distance: float
    trainable_layers: tuple | None = None
    name: str = "student-teacher"

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.teacher.layer_sizes

    def student(self, feedback=None, *, feedback_init: str | None = None,
                generator: torch.Generator | None = None) -> LayeredNetwork:
        """A fresh student network with the initial weights and feedback form ``feedback`` on layers ``2..L``.

        Exact feedback starts at ``W_i^{-1}``; learned and original feedback at the
        (pseudo-)inverse ``W_i^+`` (section 5.2.2, justified by section 5.2.1); fixed random
        feedback draws ``B`` from ``generator`` (default: seeded from :attr:`seed`).

        Raises
        ------
        ValueError
            For ``feedback='exact'`` on layers of unequal size.
        """
        sizes = self.layer_sizes
        if feedback is not None and FEEDBACK_FORMS.get(feedback).name == "exact" and len(set(sizes[1:])) > 1:
            raise ValueError(
                f"exact-inverse feedback needs square weights W_2..W_L, i.e. n_1 = ... = n_L, but the layer sizes "
                f"are {list(sizes)}. Use equal hidden and output sizes (e.g. 6,6,6) or a learned-inverse method "
                "such as 'dtp-ai', which learns the pseudo-inverse (Thms 4.6-4.7).")
        if generator is None:
            generator = make_generator(derived_seed(self.seed, "feedback"))
        nonlinearities = [layer.nonlinearity for layer in self.teacher.layers]
        layers = []
        for i, weight in enumerate(self.student_weights, start=1):
            lower = nonlinearities[i - 2] if i >= 2 else get_nonlinearity("identity")
            layers.append(Layer(weight, nonlinearities[i - 1], feedback if i >= 2 else None,
                                feedback_init=feedback_init, lower_nonlinearity=lower, generator=generator))
        return LayeredNetwork(layers)

    def describe(self) -> dict:
        """JSON-ready summary: task, sizes, nonlinearities, set sizes, distance, seed, trainable layers."""
        return {"task": self.name, "layers": list(self.layer_sizes),
                "nonlinearities": [layer.nonlinearity.spec for layer in self.teacher.layers],
                "n_train": int(self.train_inputs.shape[0]), "n_test": int(self.test_inputs.shape[0]),
                "distance": self.distance, "seed": self.seed,
                "trainable_layers": None if self.trainable_layers is None else list(self.trainable_layers)}


def _labelled(teacher: LayeredNetwork, inputs: NoiseSource, n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = inputs.sample(n, generator=generator, dtype=teacher.dtype)
    with torch.no_grad():
        return x, teacher(x)[-1]


def student_teacher(layers: Sequence[int] = (6, 6, 6), *, nonlinearity="leaky_relu:0.35",
                    output_nonlinearity="identity", n_train: int = 2000, n_test: int = 1000,
                    distance: float = 8.0, init_threshold: float = 0.4, seed: int = 0,
                    dtype: torch.dtype = torch.float64, inputs: NoiseSource | None = None) -> StudentTeacherProblem:
    """The student–teacher regression problem of sections 5.1.3 and 5.2.2.

    The teacher has standard Gaussian weights (``weight_scale = 1``) redrawn until
    ``sigma_min sigma_max > init_threshold`` (section 4.2.3); each student matrix is
    :func:`neighbour_matrix` of the teacher's at ``distance``. Inputs are white noise
    ``N(0, I)`` unless ``inputs`` is given; labels are the teacher's outputs (noise-free).

    Parameters
    ----------
    layers : sequence of int
        ``(n_0, ..., n_L)``; the thesis uses (6, 6, 6), (6, 6, 4) and (6, 6, 6, 6, 6, 6).
    nonlinearity, output_nonlinearity : spec
        ``s_1..s_{L-1}`` (leaky ReLU with slope 0.35) and ``s_L`` (identity).
    n_train, n_test : int
        Sizes of the training and test sets (the thesis: 2000 = 2000 x 1 and 1920 = 60 x 32
        training samples; 1000 test samples in its toolbox).
    distance : float
        Frobenius distance of each student matrix from the teacher's (8.0).
    init_threshold : float
        ``sigma_min sigma_max`` threshold for teacher and student matrices (0.4).
    seed : int
        Seeds the teacher, the student and both data sets.
    """
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    distance = check_positive("distance", distance, allow_zero=True)
    generator = make_generator(derived_seed(seed, "weights"))
    teacher = LayeredNetwork.build(layers, nonlinearity=nonlinearity, output_nonlinearity=output_nonlinearity,
                                   feedback=None, generator=generator, dtype=dtype, weight_scale=1.0,
                                   init_threshold=init_threshold)
    student = tuple(neighbour_matrix(layer.weight.detach(), distance, threshold=init_threshold, generator=generator)
                    for layer in teacher.layers)
    source = inputs if inputs is not None else WhiteNoise(teacher.layer_sizes[0])
    if source.dim != teacher.layer_sizes[0]:
        raise ValueError(f"inputs has dimension {source.dim}, but the input layer has n_0={teacher.layer_sizes[0]}.")
    # separate generators: the test set does not depend on the size of the training set
    _check_data_memory(teacher, n_train, n_test)
    x_train, y_train = _labelled(teacher, source, n_train, make_generator(derived_seed(seed, "train")))
    x_test, y_test = _labelled(teacher, source, n_test, make_generator(derived_seed(seed, "test")))
    return StudentTeacherProblem(teacher, student, x_train, y_train, x_test, y_test, seed=seed, distance=distance)


def _check_data_memory(teacher: LayeredNetwork, n_train: int, n_test: int) -> None:
    """Refuse data sets whose teacher activations (``(n_train + n_test) sum(n_i)`` values) exceed the memory."""
    check_memory(f"the data sets of n_train={n_train} and n_test={n_test} samples of layers "
                 f"{list(teacher.layer_sizes)}",
                 (n_train + n_test) * sum(teacher.layer_sizes) * (torch.finfo(teacher.dtype).bits // 8),
                 hint="Lower n_train or n_test.")


#: Hidden nonlinearity of the two cases of the toy example (section 5.1.1).
TOY_CASES = {"linear": "identity", "leaky-relu": "leaky_relu:0.1"}


def toy_example(case: str = "linear", *, seed: int = 0, distance: float = 2.0, n_train: int = 1000,
                n_test: int = 1000, dtype: torch.dtype = torch.float64) -> StudentTeacherProblem:
    """The toy example of section 5.1.1 (figs 5.1-5.4): ``h_0`` (1) -> ``h_1`` (2) -> ``h_2`` (2).

    Teacher and student share the output weights ``W_2`` (2 x 2, robustly invertible, never
    trained: :attr:`~StudentTeacherProblem.trainable_layers` is ``(1,)``); only the hidden weights
    ``W_1`` (2 x 1) differ, so the loss is a function of two parameters that can be drawn as
    contours (:func:`toy_loss_surface`). Inputs are ``N(0, 1)`` (``E[h_0^2] = 1``, as in the figures).

    Parameters
    ----------
    case : {'linear', 'leaky-relu'}
        Hidden nonlinearity: identity (eqs. 5.1-5.12) or leaky ReLU with slope 0.1 (eqs. 5.13-5.22).
    distance : float
        ``||W_1 - W_1*||_F`` of the student's start (the thesis does not state it; 2.0 by default).
    n_train, n_test : int
        Sizes of the training and test sets.
    """
    if case not in TOY_CASES:
        raise ValueError(f"case={case!r} is not valid; use one of {', '.join(TOY_CASES)}.")
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    check_positive("distance", distance, allow_zero=True)
    generator = make_generator(derived_seed(seed, "weights"))
    w2 = robust_gaussian_matrix(2, 2, threshold=0.4, generator=generator, dtype=dtype)
    w1_teacher = torch.randn(2, 1, generator=generator, dtype=dtype)
    teacher = LayeredNetwork([Layer(w1_teacher, TOY_CASES[case]), Layer(w2, "identity")])
    direction = torch.randn(2, 1, generator=generator, dtype=dtype)
    w1_student = w1_teacher + distance * direction / direction.norm()
    source = WhiteNoise(1)
    _check_data_memory(teacher, n_train, n_test)
    x_train, y_train = _labelled(teacher, source, n_train, make_generator(derived_seed(seed, "train")))
    x_test, y_test = _labelled(teacher, source, n_test, make_generator(derived_seed(seed, "test")))
    return StudentTeacherProblem(teacher, (w1_student, w2.clone()), x_train, y_train, x_test, y_test, seed=seed,
                                 distance=distance, trainable_layers=(1,), name=f"toy-{case}")


def toy_loss_surface(problem: StudentTeacherProblem, w1_points: torch.Tensor) -> torch.Tensor:
    """Mean ``||h_2 - y||^2`` over the test set for each hidden weight ``W_1`` in ``w1_points``.

    Parameters
    ----------
    w1_points : Tensor, shape (G, 2)
        Values of ``W_1`` (its two entries).

    Returns
    -------
    Tensor, shape (G,)
    """
    if problem.layer_sizes != (1, 2, 2):
        raise ValueError(f"toy_loss_surface needs the 1-2-2 toy network, got layer sizes {problem.layer_sizes}.")
    s = problem.teacher.layer(1).nonlinearity
    w2 = problem.student_weights[1]
    hidden = s(problem.test_inputs[None, :, :] * w1_points[:, None, :])  # (G, N, 2): W_1 h_0 for scalar h_0
    out = hidden @ w2.T
    return ((out - problem.test_labels[None]) ** 2).sum(-1).mean(-1)


def mean_squared_error(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    """``(1/(N n_L)) sum_b ||h_L^(b) - y^(b)||^2``: the MSE the thesis's figures plot (``torch.nn.MSELoss``).

    The mean over the samples *and* the outputs (:data:`~tpdynamics.training.loss.LOSS_UNIT`): eq. (5.36)/(5.50)
    divided by the number of samples and by ``n_L``, what the thesis's toolbox reported
    (``nn.MSELoss()`` of its output layers).

    Parameters
    ----------
    outputs, labels : Tensor, shape (N, n_L)
    """
    return float(((outputs - labels) ** 2).mean())
