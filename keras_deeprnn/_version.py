"""The package's version: one place, read by `__init__`, `--version` and the build."""

__version__ = "0.1.0"
