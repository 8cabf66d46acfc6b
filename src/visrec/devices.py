"""Where work runs and how it reports: the one device resolution and the one progress-bar switch."""

from __future__ import annotations

import os
import sys

import torch

from visrec.errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve a device name once: ``auto`` (or None) -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
    return resolved


def progress_disabled(progress: bool | None = None) -> bool:
    """tqdm's ``disable``: ``progress`` when given, else bars only on a terminal without TQDM_DISABLE."""
    if progress is not None:
        return not progress
    return not sys.stderr.isatty() or bool(os.environ.get("TQDM_DISABLE"))
