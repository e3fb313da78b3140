"""Training: YAML config -> datasets with on-the-fly augmentation -> AdamW/EMA loop -> stemdeck checkpoints.

Entry points: :func:`stemdeck.train.loop.train` and the ``stemdeck train`` command (:mod:`stemdeck.cli.train`).
"""
