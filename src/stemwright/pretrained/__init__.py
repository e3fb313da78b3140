"""Published checkpoints of other projects: the catalogue (data), download + checksum, and format loaders.

- :mod:`stemwright.pretrained.catalogue`: ``list_published()``, ``load_published(name, offline=..., progress=...)``.
- :mod:`stemwright.pretrained.download`: cache folder, verified atomic downloads, offline mode.
- :mod:`stemwright.pretrained.formats`: ``load_any(path)`` detects a checkpoint's format and loads it.
- :mod:`stemwright.pretrained.loading`: ``load_model(name_or_path)``, the one resolver of a name, a path or a published model.
"""
