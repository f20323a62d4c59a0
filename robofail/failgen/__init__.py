"""Failure generation: perturbations, specs, the generator and its backends, boundary search."""
