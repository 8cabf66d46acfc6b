"""Resuming a run: is the checkpoint's config the current one?

A checkpoint stores its model config as JSON. Options added to visrec after it was written (absent from
that JSON, e.g. ``fused_adam`` or ``optimizer`` in a run from an older version) take their defaults, with a
log line; any other difference (a changed value, an option the current version no longer has) refuses
with one line naming the options, old -> new.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from visrec.errors import ConfigError, DataError
from visrec.models.config import Config

log = logging.getLogger(__name__)


def _as_json(config: Config) -> dict:
    """The config as the checkpoint stores it (tuples read back as lists)."""
    return json.loads(json.dumps(config.to_dict(), sort_keys=True))


def check_resume_config(saved: object, config: Config, path: Path, fix: str) -> None:
    """Raise unless ``saved`` (the checkpoint's config JSON) describes ``config`` (see module doc)."""
    try:
        old = json.loads(saved) if isinstance(saved, str) else None
    except ValueError:
        old = None
    if not isinstance(old, dict):
        raise DataError(f"damaged training checkpoint (no readable config); {fix}", path=path)
    current = _as_json(config)
    filled, added = type(config).saved_as_now(old)
    differ = sorted(k for k in filled.keys() | current.keys() if filled.get(k) != current.get(k))
    if differ:
        shown = ", ".join(
            f"{k} {filled[k]!r} -> {current[k]!r}"
            if k in filled and k in current
            else f"{k} (not an option of this version)"
            for k in differ[:4]
        )
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ConfigError(
            f"{path}: checkpoint was written with another config ({shown}{more}); "
            f"cannot resume; {fix}"
        )
    if added:
        log.info(
            "checkpoint %s predates option(s) %s: resuming with the default(s) %s",
            path,
            ", ".join(added),
            ", ".join(f"{k}={filled[k]!r}" for k in added),
        )
