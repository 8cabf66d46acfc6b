"""visrec.features.images: every image kind, reduced-size decoding of huge JPEGs, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from features_support import BAD, make_zoo
from visrec.features.images import ImageReadError, center_crop_resize, load_rgb


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return make_zoo(tmp_path_factory.mktemp("zoo"))


def _file(zoo, stem):
    return next(zoo.glob(stem + ".*"))


@pytest.mark.parametrize(
    "kind", ["rgb", "cmyk", "palette", "rgba", "la", "gif", "webp", "bmp", "tiff16"]
)
def test_every_good_kind_reads_as_rgb(zoo, kind):
    image = load_rgb(_file(zoo, kind))
    assert image.mode == "RGB"
    assert min(image.size) >= 32


def test_colours_after_conversion(zoo):
    def pixel(stem, xy=(5, 5)):
        return np.asarray(load_rgb(_file(zoo, stem)))[xy[1], xy[0]].astype(int)

    assert pixel("cmyk")[0] > 200 and pixel("cmyk")[1:].max() < 60  # CMYK red stays red
    assert tuple(pixel("palette", (4, 4))) == (0, 255, 0)  # opaque palette entry
    assert tuple(pixel("palette", (28, 4))) == (255, 255, 255)  # transparent -> white
    assert tuple(pixel("rgba")) == (255, 255, 255)  # transparent blue -> white, not blue
    assert tuple(pixel("la")) == (0, 0, 0)
    assert tuple(pixel("gif")) == (255, 0, 0)  # first frame of the animation
    assert abs(pixel("tiff16")[0] - 127) <= 1  # 16-bit grey scaled to 8 bits


def test_exif_orientation_is_applied(zoo):
    assert load_rgb(_file(zoo, "exif")).size == (20, 40)  # stored 40x20, displayed rotated


@pytest.mark.parametrize("kind,reason", sorted(BAD.items()))
def test_unreadable_files_raise_a_clear_error(zoo, kind, reason):
    with pytest.raises(ImageReadError, match=reason) as info:
        load_rgb(_file(zoo, kind))
    assert str(_file(zoo, kind)) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_rgb(tmp_path / "nope.jpg")


def test_huge_jpeg_decodes_at_reduced_size_without_raising_the_limit(zoo):
    limit = Image.MAX_IMAGE_PIXELS
    image = load_rgb(_file(zoo, "huge"), min_side=256)
    assert image.size == (2500, 2500)  # 1/8 DCT scaling, still >= 256
    assert limit == Image.MAX_IMAGE_PIXELS
    with pytest.raises(Image.DecompressionBombError):
        Image.open(_file(zoo, "huge"))  # the global protection is intact


def test_oversized_non_jpeg_is_refused_and_jpeg_is_drafted(tmp_path):
    Image.new("RGB", (400, 400), (1, 2, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (400, 400), (1, 2, 3)).save(tmp_path / "a.jpg")
    with pytest.raises(ImageReadError, match="above the pixel budget of 10,000"):
        load_rgb(tmp_path / "a.png", max_pixels=10_000)
    assert load_rgb(tmp_path / "a.jpg", max_pixels=10_000).size == (
        100,
        100,
    )  # 1/4: the first scale under the limit


def test_draft_keeps_min_side_and_max_side_bounds(tmp_path):
    Image.new("RGB", (1600, 1200), (9, 9, 9)).save(tmp_path / "big.jpg")
    assert min(load_rgb(tmp_path / "big.jpg", min_side=256).size) >= 256
    assert load_rgb(tmp_path / "big.jpg", min_side=256).size == (400, 300)
    assert max(load_rgb(tmp_path / "big.jpg", max_side=100).size) == 100


def test_center_crop_resize_matches_torchvision():
    from torchvision.transforms import CenterCrop, Compose, Resize

    rng = np.random.default_rng(1)
    smooth = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(smooth).resize((320, 240), Image.Resampling.BICUBIC)
    ours = center_crop_resize(image, 64, 56).astype(int)
    reference = np.asarray(Compose([Resize(64), CenterCrop(56)])(image)).astype(int)
    assert ours.shape == reference.shape == (56, 56, 3)
    assert np.abs(ours - reference).mean() < 2.0
