"""Separation models. One file per family; :mod:`stemwright.models.registry` maps names to them."""
