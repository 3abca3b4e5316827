"""The package version (its own module: :mod:`tpdynamics.runs` keys results by it without importing the package)."""
__version__ = "0.1.0"
