"""Image encoders Phi for models trained end to end from pixels (DVBPR).

- ``cnnf``: CNN-F (Chatfield et al., BMVC 2014, "Return of the devil in the details") as DVBPR uses it
  (Kang et al., ICDM 2017, Sec. IV-B and their released code): five convolutions (64 11x11 stride 4, 256
  5x5, three 256 3x3), ReLU, 2x2 max-pooling after conv1, conv2 and conv5, then fc 4096 -> 4096 -> K with
  dropout 0.5, Xavier-initialised.
- ``alexnet``: the same five-conv + three-fc layout with AlexNet's widths (Krizhevsky et al., NIPS 2012:
  64, 192, 384, 256, 256 as in torchvision's single-GPU variant).

Both use "same" padding and ceil-mode pooling, so the conv5 map is ceil(S/32) pixels a side for an S-pixel
input (7x7 at 224 as in the paper, 1x1 at 32): the first fc layer is sized from ``image_size`` and the
network trains at low resolution on a CPU. ``backbone``: any :func:`visrec.features.create_backbone` CNN
(its pooled output) plus a linear head, for transfer from pretrained weights.

Encoders take uint8 NHWC batches (the pixel cache's layout) and normalise inside, in the compute dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from visrec.errors import ConfigError
from visrec.features.backbones import create_backbone

# (out channels, kernel, stride, max-pool after)
ARCHS: dict[str, tuple[tuple[int, int, int, bool], ...]] = {
    "cnnf": (
        (64, 11, 4, True),
        (256, 5, 1, True),
        (256, 3, 1, False),
        (256, 3, 1, False),
        (256, 3, 1, True),
    ),
    "alexnet": (
        (64, 11, 4, True),
        (192, 5, 1, True),
        (384, 3, 1, False),
        (256, 3, 1, False),
        (256, 3, 1, True),
    ),
}
PAPER_MEAN, PAPER_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # (x - 127.5) / 127.5 as DVBPR's code


def conv_output_side(image_size: int, arch: str = "cnnf") -> int:
    """Side of the last conv map for an ``image_size`` input (ceil divisions by strides and pools)."""
    side = image_size
    for _, _, stride, pool in ARCHS[arch]:
        side = math.ceil(side / stride)
        side = math.ceil(side / 2) if pool else side
    return side


class ConvNet(nn.Module):
    """Five convolutions + three fully connected layers (CNN-F or AlexNet widths), output ``out_dim``."""

    def __init__(
        self,
        arch: str,
        image_size: int,
        out_dim: int,
        fc_dim: int = 4096,
        dropout: float = 0.5,
        width: float = 1.0,
    ):
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
        layers: list[nn.Module] = []
        channels = 3
        for out, kernel, stride, pool in ARCHS[arch]:
            out = max(1, round(out * width))
            layers += [
                nn.Conv2d(channels, out, kernel, stride, padding=kernel // 2),
                nn.ReLU(inplace=True),
            ]
            if pool:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            channels = out
        self.features = nn.Sequential(*layers)
        side = conv_output_side(image_size, arch)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, out_dim),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BackboneNet(nn.Module):
    """A pretrained-capable backbone's pooled vector followed by a linear layer to ``out_dim``.

    ``frozen``: the backbone keeps its weights and its batch-norm statistics (always in eval mode, no
    gradient); only the head trains, so a backbone vector depends on the image alone and can be cached."""

    def __init__(
        self,
        body: nn.Module,
        feature_dim: int,
        out_dim: int,
        dropout: float = 0.0,
        frozen: bool = False,
    ):
        super().__init__()
        self.body = body
        self.frozen = frozen
        self.body.requires_grad_(not frozen)
        if frozen:  # inference only: channels_last runs ~1.7x faster on CPU (efficientnet_lite0)
            self.body.to(memory_format=torch.channels_last)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(feature_dim, out_dim)

    def train(self, mode: bool = True) -> BackboneNet:
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's vector of normalised images (n, feature_dim)."""
        return torch.flatten(self.body(x), 1)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """The head: backbone vectors -> (n, out_dim)."""
        return self.proj(self.drop(v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.pooled(x))


class ImageEncoder(nn.Module):
    """uint8 NHWC pixels -> normalised NCHW (optionally augmented while training) -> ``net``."""

    def __init__(
        self, net: nn.Module, mean: Sequence[float], std: Sequence[float], augment: bool = False
    ):
        super().__init__()
        self.net = net
        self.augment = augment
        scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, 3, 1, 1)
        shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(1, 3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).to(self.scale.dtype) * self.scale + self.shift
        if self.training and self.augment:
            x = random_flip_crop(x)
        return x.contiguous()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(pixels))

    @property
    def cacheable(self) -> bool:
        """Whether the backbone part of an image's encoding depends on the image alone (a frozen backbone
        without augmentation): then :meth:`pooled` can be computed once per image and :meth:`head` trains."""
        return isinstance(self.net, BackboneNet) and self.net.frozen and not self.augment

    @torch.no_grad()
    def pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's vectors of uint8 NHWC ``pixels`` (only when :attr:`cacheable`)."""
        x = self.normalise(pixels).contiguous(memory_format=torch.channels_last)
        return self.net.pooled(x).float()

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        """The trainable head on :meth:`pooled` vectors; ``head(pooled(p)) == forward(p)``."""
        return self.net.project(pooled.to(self.scale.dtype))


def random_flip_crop(x: torch.Tensor, pad_fraction: float = 0.125) -> torch.Tensor:
    """Light augmentation: horizontal flip with p = 0.5 and a random crop of the reflect-padded image
    (shift by up to ``pad_fraction`` of the side), per image, drawn from torch's global generator."""
    n, _, h, w = x.shape
    flip = torch.rand(n, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, int(round(min(h, w) * pad_fraction)))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,)).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def build_encoder(
    *,
    arch: str,
    image_size: int,
    out_dim: int,
    fc_dim: int = 4096,
    dropout: float = 0.5,
    width: float = 1.0,
    augment: bool = False,
    backbone: str = "",
    freeze_backbone: bool = False,
) -> ImageEncoder:
    """The encoder of a config (random init; pretrained backbone weights are loaded separately by
    :func:`load_backbone_weights`, so a saved model rebuilds without them)."""
    if not backbone:
        net = ConvNet(arch, image_size, out_dim, fc_dim, dropout, width)
        return ImageEncoder(net, PAPER_MEAN, PAPER_STD, augment)
    body, prep = create_backbone(backbone, "none", "pooled")
    try:
        with torch.no_grad():
            feature_dim = body(torch.zeros(1, 3, image_size, image_size)).flatten(1).shape[1]
    except RuntimeError as exc:
        raise ConfigError(
            f"backbone {backbone} cannot take {image_size}px images ({exc}); raise image_size"
        ) from None
    return ImageEncoder(
        BackboneNet(body, feature_dim, out_dim, dropout, frozen=freeze_backbone),
        prep["mean"],
        prep["std"],
        augment,
    )


def load_backbone_weights(encoder: ImageEncoder, backbone: str, weights: str) -> str:
    """Copy ``weights`` (imagenet or a state-dict file) of ``backbone`` into a :class:`BackboneNet`
    encoder (transfer learning); returns the weights' description."""
    pretrained, prep = create_backbone(backbone, weights, "pooled")
    encoder.net.body.load_state_dict(pretrained.state_dict())
    return str(prep["weights"])
