"""Separation models. One file per family; :mod:`stemdeck.models.registry` maps names to them."""
