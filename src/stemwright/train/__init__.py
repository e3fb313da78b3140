"""Training: YAML config -> datasets with on-the-fly augmentation -> AdamW/EMA loop -> stemwright checkpoints.

Entry points: :func:`stemwright.train.loop.train` and the ``stemwright train`` command (:mod:`stemwright.cli.train`).
"""
