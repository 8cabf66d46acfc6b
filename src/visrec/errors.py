"""Exception types shared by every layer.

Errors raised at a boundary (file loaders, CLI, HTTP) name the file, the line and what was expected, so the
CLI can print them as they are, without a traceback.
"""

from __future__ import annotations


class VisrecError(Exception):
    """Base class of every error visrec raises on purpose (bad input, bad configuration)."""


class DataError(VisrecError, ValueError):
    """A data file or folder is unusable; the message names the file and, where known, the line."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}, line {line}"
            where += ": "
        super().__init__(where + message)


class ConfigError(VisrecError, ValueError):
    """A model, training or benchmark configuration value is impossible or unknown."""
