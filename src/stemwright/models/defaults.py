"""The default model's name, importable without torch (the CLI's option defaults and ``--help`` need it)."""

DEFAULT_MODEL = "stemwright_4stem"
