"""A sweep's configuration: a TOML file of fixed settings, a grid and random samples over training runs.

::

    [sweep]                      # optional
    name = "rates"
    description = "..."

    [fixed]                      # one value each, shared by every point
    task = "student-teacher"
    layers = [4, 4, 4]
    epochs = 3

    [grid]                       # lists of values: every combination is a point
    method = ["bp", "dtp-ai"]
    eta = [0.01, 0.03]
    seed = [0, 1, 2]

    [random]                     # optional: `samples` draws, each crossed with the whole grid
    samples = 4
    seed = 0                     # seed of the draws (not of the training runs)
    [random.parameters]
    eta_hat = {log-uniform = [0.05, 0.5]}    # also: uniform = [lo, hi], int = [lo, hi], choice = [...]

A point is one training run: one method from one seed (:func:`~tpdynamics.training.runner.run_training_task`),
configured by :class:`~tpdynamics.training.TrainingConfig`; ``None`` settings take the thesis's values
as for ``tpdynamics train``. The points are ``draws x grid`` (draws outer; in the grid the last key
varies fastest); without ``[random]`` they are the grid alone. Draw ``k`` uses the generator
``numpy.random.default_rng([seed, k])``, so more ``samples`` keep the earlier draws (and their stored
results). A key in none of the tables keeps its default (``seed``: 0); ``method`` is required.

Every check names the key (``grid.eta[1]``, ``random.parameters.eta_hat``) and what it expects: an
unknown key (with the close match), a value of the wrong type or range, an empty list or grid, a key
in two tables.
"""
from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..validation import unknown_names_message

__all__ = ["SweepSpec", "PARAMETERS", "DISTRIBUTIONS", "load_sweep", "parse_sweep"]


def _text(value):
    return f"{type(value).__name__} {value!r}"


def _integer(minimum: int):
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{key} must be a whole number >= {minimum}, got {_text(value)}.")
        if value < minimum:
            raise ValueError(f"{key}={value} must be >= {minimum}.")
        return value
    check.kind = "int"
    return check


def _number(*, positive: bool = True, zero: bool = False):
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{key} must be a number, got {_text(value)}.")
        value = float(value)
        if not math.isfinite(value) or (positive and (value < 0 or (value == 0 and not zero))):
            raise ValueError(f"{key}={value!r} must be finite and {'>= 0' if zero else '> 0'}.")
        return value
    check.kind = "float"
    return check


def _string(choices=None):
    def check(key, value):
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {_text(value)}.")
        if choices is not None and value not in choices:
            raise ValueError(f"{key}={value!r} is not valid; use one of {', '.join(choices)}.")
        return value
    check.kind = "str"
    return check


def _boolean(key, value):
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {_text(value)}.")
    return value


_boolean.kind = "bool"


def _layers(key, value):
    if not isinstance(value, list) or len(value) < 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value):
        raise TypeError(f"{key} must be a list of at least two whole numbers >= 1 (layer sizes n_0..n_L), such as "
                        f"[6, 6, 6], got {_text(value)}.")
    return list(value)


_layers.kind = "list"

#: The parameters a sweep can set (TOML key -> check); ``lambda`` is ``TrainingConfig.lambda_``.
PARAMETERS = {
    "method": _string(), "seed": _integer(0), "task": _string(), "preset": _string(), "layers": _layers,
    "nonlinearity": _string(), "output_nonlinearity": _string(), "epochs": _integer(1), "eta": _number(),
    "eta_hat": _number(), "eta_backward": _number(), "lambda": _number(zero=True), "epsilon": _number(),
    "noise_std": _number(zero=True), "batch_size": _integer(1), "batches_per_epoch": _integer(1),
    "final_rate_fraction": _number(), "n_train": _integer(1), "n_test": _integer(1), "distance": _number(),
    "init_threshold": _number(zero=True), "diagnostics": _boolean, "diagnostics_every": _integer(1),
    "record_steps": _boolean, "dtype": _string(("float64", "float32")),
    "loss_convention": _string(("thesis", "half")),
}
#: Distributions of ``[random.parameters]`` and the parameter kinds they apply to.
DISTRIBUTIONS = {"uniform": ("float",), "log-uniform": ("float",), "int": ("int",),
                 "choice": ("int", "float", "str", "bool", "list")}
_TABLES = ("sweep", "fixed", "grid", "random")


@dataclass
class SweepSpec:
    """A parsed sweep configuration (module docstring).

    Attributes
    ----------
    name, description : str
    fixed : dict
        Parameter -> value.
    grid : dict
        Parameter -> list of values (in the file's order).
    random : dict
        Parameter -> ``(distribution, arguments)``.
    samples : int
        Random draws (0 without ``[random]``).
    draw_seed : int
        Seed of the draws.
    source : str
        Where it was read from (for messages).
    """

    name: str = "sweep"
    description: str = ""
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)
    samples: int = 0
    draw_seed: int = 0
    source: str = "sweep"

    @property
    def swept(self) -> list[str]:
        """The parameters that vary between points (grid, then random), in order."""
        return [*self.grid, *self.random]

    def draws(self) -> list[dict]:
        """The random draws (``[{}]`` without ``[random]``)."""
        if not self.random:
            return [{}]
        out = []
        for k in range(self.samples):
            rng = np.random.default_rng([self.draw_seed, k])
            out.append({name: _draw(rng, *self.random[name]) for name in sorted(self.random)})
        return out

    def points(self) -> list[dict]:
        """Every point: fixed settings, one grid combination and one draw (draws outer, last grid key fastest)."""
        combos = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        return [{**self.fixed, **draw, **combo} for draw in self.draws() for combo in combos]

    def shape(self) -> str:
        """``"method (2) x eta (2) x seed (3)"`` (with ``"4 draws of eta_hat"`` where there is a ``[random]``)."""
        parts = [f"{name} ({len(values)})" for name, values in self.grid.items()]
        if self.random:
            parts.insert(0, f"{self.samples} draws of {', '.join(sorted(self.random))}")
        return " x ".join(parts)


def _draw(rng: np.random.Generator, distribution: str, arguments):
    if distribution == "uniform":
        return float(rng.uniform(*arguments))
    if distribution == "log-uniform":
        return float(math.exp(rng.uniform(math.log(arguments[0]), math.log(arguments[1]))))
    if distribution == "int":
        return int(rng.integers(arguments[0], arguments[1] + 1))
    return arguments[int(rng.integers(len(arguments)))]


def load_sweep(path) -> SweepSpec:
    """Read and check a sweep's TOML file (module docstring).

    Raises
    ------
    ValueError, TypeError
        Starting with the file's name, naming the key at fault; a TOML syntax error with its line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read the sweep configuration {path}: {err.strerror or err}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}.") from None
    return parse_sweep(data, source=str(path))


def parse_sweep(data: dict, *, source: str = "sweep") -> SweepSpec:
    """Check a sweep's configuration given as the dict TOML reads (module docstring); see :func:`load_sweep`."""
    try:
        return _parse(data, source)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{source}: {err}") from None


def _table(data: dict, name: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table ([{name}]), got {_text(value)}.")
    return value


def _unknown(owner: str, keys, valid) -> None:
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ValueError(unknown_names_message(owner, "key", [f"{k}" for k in unknown], valid))


def _parse(data: dict, source: str) -> SweepSpec:
    if not isinstance(data, dict):
        raise TypeError(f"the configuration must be a table of tables, got {_text(data)}.")
    _unknown("the sweep configuration", data, _TABLES)
    header, fixed, grid, random = (_table(data, name) for name in _TABLES)
    _unknown("[sweep]", header, ("name", "description"))
    spec = SweepSpec(source=source, name=_string()("sweep.name", header.get("name", Path(source).stem)),
                     description=_string()("sweep.description", header.get("description", "")))
    _unknown("[fixed]", fixed, PARAMETERS)
    spec.fixed = {key: PARAMETERS[key](f"fixed.{key}", value) for key, value in fixed.items()}
    _unknown("[grid]", grid, PARAMETERS)
    for key, values in grid.items():
        if not isinstance(values, list):
            raise TypeError(f"grid.{key} must be a list of values, such as [{_example(key)}], got {_text(values)}; "
                            f"a single value goes to [fixed].")
        if not values:
            raise ValueError(f"grid.{key} is an empty list, so the grid has no points; give it at least one value.")
        spec.grid[key] = [PARAMETERS[key](f"grid.{key}[{i}]", v) for i, v in enumerate(values)]
        if len(set(map(repr, spec.grid[key]))) != len(values):
            raise ValueError(f"grid.{key} lists a value twice: {values}.")
    _parse_random(random, spec)
    for key in set(spec.fixed) & set(spec.grid) | set(spec.fixed) & set(spec.random) | set(spec.grid) & set(spec.random):
        tables = [name for name, table in (("fixed", spec.fixed), ("grid", spec.grid),
                                           ("random.parameters", spec.random)) if key in table]
        raise ValueError(f"{key} is set in both {' and '.join(tables)}; keep it in one of them.")
    if not spec.grid and not spec.random:
        raise ValueError("the grid is empty: the sweep has no points. Give [grid] at least one key with a list of "
                         "values (e.g. seed = [0, 1, 2]) or add [random] samples.")
    if "method" not in spec.fixed and "method" not in spec.grid and "method" not in spec.random:
        raise ValueError("method is not set: give fixed.method = \"bp\" or grid.method = [\"bp\", \"dtp-ai\"].")
    return spec


def _parse_random(random: dict, spec: SweepSpec) -> None:
    if not random:
        return
    _unknown("[random]", random, ("samples", "seed", "parameters"))
    if "samples" not in random:
        raise ValueError("random.samples is missing: say how many random draws to make, e.g. samples = 8.")
    spec.samples = _integer(1)("random.samples", random["samples"])
    spec.draw_seed = _integer(0)("random.seed", random.get("seed", 0))
    parameters = random.get("parameters", {})
    if not isinstance(parameters, dict):
        raise TypeError(f"random.parameters must be a table ([random.parameters]), got {_text(parameters)}.")
    if not parameters:
        raise ValueError("random.parameters is empty: give at least one parameter to draw, e.g. "
                         "eta = {log-uniform = [0.001, 0.1]}.")
    _unknown("[random.parameters]", parameters, PARAMETERS)
    for key, value in parameters.items():
        spec.random[key] = _distribution(f"random.parameters.{key}", key, value)


def _distribution(where: str, key: str, value):
    check, kind = PARAMETERS[key], PARAMETERS[key].kind
    allowed = [name for name, kinds in DISTRIBUTIONS.items() if kind in kinds]
    if not isinstance(value, dict) or len(value) != 1:
        raise TypeError(f"{where} must be one distribution, {{{allowed[0]} = [...]}} (one of {', '.join(allowed)}), "
                        f"got {_text(value)}.")
    (name, arguments), = value.items()
    if name not in allowed:
        raise ValueError(f"{where}: {name!r} is not a distribution for {key} ({kind}); use one of "
                         f"{', '.join(allowed)}.")
    if not isinstance(arguments, list) or not arguments:
        raise TypeError(f"{where}.{name} must be a non-empty list, got {_text(arguments)}.")
    if name == "choice":
        return name, [check(f"{where}.choice[{i}]", v) for i, v in enumerate(arguments)]
    if len(arguments) != 2:
        raise ValueError(f"{where}.{name} must be [low, high], got {arguments}.")
    low, high = (check(f"{where}.{name}[{i}]", v) for i, v in enumerate(arguments))
    if not low < high:
        raise ValueError(f"{where}.{name} = [{low}, {high}] needs low < high.")
    if name == "log-uniform" and low <= 0:
        raise ValueError(f"{where}.log-uniform needs low > 0, got {low}.")
    return name, [low, high]


def _example(key: str) -> str:
    return {"int": "1, 2", "float": "0.01, 0.1", "str": '"a", "b"', "bool": "true, false",
            "list": "[6, 6, 6], [6, 8, 6]"}[PARAMETERS[key].kind]
