"""Fleets: one detector per series, trained and scored in parallel worker processes.

``model`` (:class:`Fleet`, the detectors keyed by series id), ``workers`` (the process pool and
the per-series work), ``jobs`` (the fleet's train, score and evaluate runs).
"""
