"""Published checkpoints of other projects: the catalogue (data), download + checksum, and format loaders.

- :mod:`stemdeck.pretrained.catalogue`: ``list_published()``, ``load_published(name, offline=..., progress=...)``.
- :mod:`stemdeck.pretrained.download`: cache folder, verified atomic downloads, offline mode.
- :mod:`stemdeck.pretrained.formats`: ``load_any(path)`` detects a checkpoint's format and loads it.
"""
