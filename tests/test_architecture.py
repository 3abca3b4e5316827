"""The shape of the code base: imports point one way, ``analysis`` uses only public ``tpdynamics`` names, no
import circles, and every package states its public face.

The modules are listed with ``pkgutil`` (which modules exist) and read with ``ast`` (what they import, including
imports inside functions, which a lazy import would otherwise hide).
"""
import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tpdynamics", "analysis", "tpdynamics_cli")


def _modules() -> dict[str, Path]:
    """Every module of the project's packages: dotted name -> file."""
    out = {}
    for package in PACKAGES:
        out[package] = ROOT / package / "__init__.py"
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            folder = Path(info.module_finder.path) / info.name.rpartition(".")[2]
            out[info.name] = folder / "__init__.py" if info.ispkg else folder.with_suffix(".py")
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """``(module, imported_name or None, line)`` for every import statement of a module, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                yield module, alias.name, node.lineno


def _targets(module: str, imported: str | None) -> list[str]:
    """The project modules an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    if imported is not None and f"{module}.{imported}" in MODULES:
        return [f"{module}.{imported}"]
    return [module] if module in MODULES else []


def _import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        graph.add_node(name)
        for module, imported, _ in _imports(name, path):
            for target in _targets(module, imported):
                if target != name:
                    graph.add_edge(name, target)
    return graph


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def test_the_walk_finds_the_modules():
    assert {"tpdynamics._equilibrium._solve", "analysis.stability._report", "analysis._jacobian",
            "analysis.reproduce.experiments.student_teacher._exact_inverses", "tpdynamics.training.rules._base",
            "tpdynamics.validation"} <= set(MODULES)


def test_analysis_and_the_cli_use_only_public_tpdynamics_names():
    offences = []
    for name, path in MODULES.items():
        if name.startswith("tpdynamics.") or name == "tpdynamics":
            continue
        for module, imported, line in _imports(name, path):
            if not (module == "tpdynamics" or module.startswith("tpdynamics.")):
                continue
            if _private(module) or (imported is not None and _private(imported)):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {module} import {imported}")
    assert not offences, "private tpdynamics names imported:\n" + "\n".join(offences)


def test_imports_point_one_way():
    """``tpdynamics`` imports neither ``analysis`` nor the CLI; ``analysis`` does not import the CLI."""
    graph = _import_graph()
    wrong = [(a, b) for a, b in graph.edges
             if (a.split(".")[0] == "tpdynamics" and b.split(".")[0] in ("analysis", "tpdynamics_cli"))
             or (a.split(".")[0] == "analysis" and b.split(".")[0] == "tpdynamics_cli")]
    assert not wrong, wrong


def test_there_is_no_import_circle():
    graph = _import_graph()
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:10])


def test_the_circle_detector_can_fail():
    graph = nx.DiGraph([("analysis.plotting", "analysis.stability._report"),
                        ("analysis.stability._report", "analysis.plotting")])
    assert list(nx.simple_cycles(graph))
    assert _private("tpdynamics._validation") and not _private("tpdynamics.validation")


@pytest.mark.parametrize("package", sorted(name for name, path in MODULES.items() if path.name == "__init__.py"))
def test_every_package_states_its_public_face(package):
    """An explicit ``__all__`` assignment in the package's source, whose names all exist."""
    tree = ast.parse(MODULES[package].read_text())
    names = [node for node in tree.body if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
             and any(isinstance(t, ast.Name) and t.id == "__all__" for t in
                     (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    assert names, f"{package}/__init__.py has no __all__"
    module = importlib.import_module(package)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing and len(set(module.__all__)) == len(module.__all__), missing


def test_non_normality_does_not_import_the_report_or_the_figures():
    graph = _import_graph()
    assert not {"analysis.plotting", "analysis.stability._report"} & set(graph.successors(
        "analysis.stability._nonnormality"))
    assert not [t for t in graph.successors("analysis.plotting") if t.startswith("analysis.stability")]
    assert "analysis.plotting" in graph.successors("analysis.stability._report")  # the figure, one way


def test_the_package_and_the_cli_start_without_the_symbolic_and_plotting_libraries():
    # every worker process and every CLI call imports tpdynamics: sympy alone cost ~0.7 s of a 5 s start here, so the
    # symbolic hooks import it when they run; a fresh interpreter, since this one has imported everything already
    probe = ("import sys, tpdynamics, tpdynamics_cli.main; "
             "print(sorted(m for m in ('sympy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _abstract_bases():
    import tpdynamics as tp
    from tpdynamics.continuous.models import ContinuousModel
    from tpdynamics.layers import FeedbackMapping
    from tpdynamics.runs.cluster import DaskExecutor
    from tpdynamics.runs.executors import Executor
    from tpdynamics.statistics import IntervalMethod
    from tpdynamics.targets import TeachingSignal
    from tpdynamics.training.data import NoiseSource
    from tpdynamics._equilibrium._base import EquilibriumSolver
    return {"Nonlinearity": (tp.Nonlinearity, {"__call__", "derivative"}),
            "FeedbackMapping": (FeedbackMapping, {"forward", "jacobian", "sympy_forward", "matrix"}),
            "TeachingSignal": (TeachingSignal, {"value"}),
            "NoiseSource": (NoiseSource, {"sample", "covariance"}),
            "IntervalMethod": (IntervalMethod, {"compute"}),
            "ContinuousModel": (ContinuousModel, {"phase_dynamics"}),
            "Executor": (Executor, {"run"}),
            "DaskExecutor": (DaskExecutor, {"_connect"}),
            "EquilibriumSolver": (EquilibriumSolver, None)}


@pytest.mark.parametrize("name", list(_abstract_bases()))
def test_contract_bases_are_abstract_and_name_their_hooks(name):
    """The public contracts are ``abc`` bases: instantiating one, or a subclass missing a hook, is a TypeError."""
    import inspect

    base, hooks = _abstract_bases()[name]
    assert inspect.isabstract(base), f"{name} is not abstract"
    if hooks is not None:
        assert set(base.__abstractmethods__) == hooks
    incomplete = type(f"Incomplete{name}", (base,), {})
    with pytest.raises(TypeError, match="abstract"):
        incomplete()
