"""Analysis layer of tpdynamics: Jacobians, spectra, stability reports and figures.

``analysis`` reads networks and dynamics through the public API of ``tpdynamics`` and is
never imported by it.
"""
