"""Optional ONNX Runtime backend for CPU feature extraction (extra ``visrec[onnx]``).

The prepared model (uint8 NHWC batch in, normalisation fused, backbone; see
:class:`visrec.features.runtime.Normalised`) is exported to ONNX once per (backbone, layer, weights,
input size, library versions) and cached under ``<cache>/onnx/`` (``$VISREC_CACHE_DIR`` or
``~/.cache/visrec``), with a JSON sidecar holding the key and the preprocessing. A later run with the
same key opens the cached graph without building the PyTorch model at all. ONNX Runtime's CPU provider
then runs it with its full graph optimisation (batch norm folded into the convolutions, blocked NCHWc
layout for the AVX2/AVX-512 kernels).

Measured on a 2-core AMD EPYC (AVX2, no AMX), one thread: resnet50 forward ~105 ms per image against
~150 ms in PyTorch eager (channels_last) and ~180 ms in the tutorial's plain NCHW loop
(docs/benchmarks.md). Features are not bitwise equal to PyTorch's: a fresh export is checked against
the PyTorch model on probe images and refused unless every item's cosine similarity is >= 0.999
(typically above 0.99999); the tests check the same on stored features.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visrec._io import atomic_path, write_json
from visrec.choices import BACKENDS
from visrec.errors import ConfigError, VisrecError
from visrec.features.pixel_cache import default_cache_dir

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "MIN_COSINE", "OnnxModel", "onnx_model"]
MIN_COSINE = 0.999
"""Per-item cosine similarity an ONNX export must reach against PyTorch on the probe images."""
_FORMAT = 1
_OPSET = 17
_VERSIONED = ("torch", "torchvision", "timm", "efficientnet-lite-pytorch")

Builder = Callable[[], tuple[nn.Module, dict[str, Any]]]


class OnnxModel:
    """Callable like the PyTorch model: a uint8 NHWC CPU tensor in, a float32 tensor out."""

    def __init__(self, session: Any, path: Path):
        self.session, self.path = session, path
        self.input_name = session.get_inputs()[0].name

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


def onnx_model(
    backbone: str,
    weights: str,
    layer: str,
    input_size: int | None,
    build: Builder,
    *,
    cache_dir: str | Path | None = None,
) -> tuple[OnnxModel, dict[str, Any]]:
    """The cached ONNX graph of this backbone (exported from ``build()`` on a miss) and its preprocessing.

    ``build`` returns the prepared fp32 CPU PyTorch model and its preprocessing dict; it is called only
    when the cache has no usable graph for the key.
    """
    ort = _import_ort()
    weights_key = _weights_key(weights)
    if weights_key is None:  # a weights file that cannot be read: let the PyTorch path say why
        build()
        raise ConfigError(f"weights {weights!r} cannot be read")
    key = {
        "format": _FORMAT,
        "opset": _OPSET,
        "backbone": backbone,
        "layer": layer,
        "weights": weights_key,
        "input_size": input_size,
        "versions": _versions(),
    }
    path = _cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), key)
    prep = _cached_prep(path, key)
    if prep is not None:
        try:
            return OnnxModel(_session(ort, path), path), prep
        except Exception as exc:  # noqa: BLE001 - a damaged cache file: export it again
            log.warning("cached ONNX graph %s is unusable (%s); exporting again", path, exc)
    model, prep = build()
    session = _export(model, prep, path, ort)
    write_json(path.with_suffix(".json"), {"key": key, "prep": prep})
    return OnnxModel(session, path), prep


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "the onnx backend needs the extra: pip install 'visrec[onnx]' (onnxruntime, onnx)"
        ) from None
    return onnxruntime


def _weights_key(weights: str) -> str | None:
    """``imagenet``/``none`` as is; a file by the SHA-256 of its bytes (None if it cannot be read)."""
    if weights in ("imagenet", "none"):
        return weights
    try:
        return "sha256:" + hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    except OSError:
        return None


def _versions() -> dict[str, str | None]:
    """Versions that decide the exported graph and what ``imagenet``/``none`` weights mean."""
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _cache_path(cache_dir: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key['backbone']}-{key['layer']}")
    return cache_dir / "onnx" / f"{stem}-{digest}.onnx"


def _cached_prep(path: Path, key: dict) -> dict[str, Any] | None:
    """The preprocessing stored with a cached graph of exactly this key, else None."""
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file()):
        return None
    try:
        stored = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    prep = stored.get("prep")
    return prep if isinstance(prep, dict) else None


def _session(ort: Any, path: Path) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export(model: nn.Module, prep: dict[str, Any], path: Path, ort: Any) -> Any:
    """Export ``model`` to ``path`` (atomically), open it and check it against PyTorch."""
    size = int(prep["input_size"])
    probe = torch.from_numpy(
        np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    )
    log.info("exporting the backbone to ONNX (once; cached at %s)", path)
    with atomic_path(path, suffix=".onnx") as tmp:
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (probe,),
                    str(tmp),
                    input_names=["pixels"],
                    output_names=["features"],
                    dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                    opset_version=_OPSET,
                    dynamo=False,
                )
        except Exception as exc:  # noqa: BLE001 - exporters fail in many ways
            raise ConfigError(
                f"cannot export this backbone to ONNX ({type(exc).__name__}: {exc}); "
                "use --backend torch"
            ) from None
        session = _session(ort, tmp)
        _check_agreement(model, OnnxModel(session, tmp), probe)
    return _session(ort, path)


def _check_agreement(model: nn.Module, onnx: OnnxModel, probe: torch.Tensor) -> None:
    with torch.inference_mode():
        expected = model(probe).float().flatten(1)
    got = onnx(probe).float().flatten(1)
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=1).min().item()
    if not cosine >= MIN_COSINE:
        raise VisrecError(
            f"ONNX Runtime's features differ from PyTorch's (cosine {cosine:.5f} < {MIN_COSINE}); "
            "use --backend torch"
        )
