"""``visrec extract`` and ``visrec features ...`` (info, import-legacy, export-legacy)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from visrec.choices import BACKENDS, PRECISIONS


def _images_and_items(source: Path) -> tuple[object, list[str] | None]:
    """An image folder as is; a dataset folder gives its images and the items of its interactions."""
    from visrec.data.images import IMAGE_EXTENSIONS
    from visrec.data.loaders import open_dataset

    if source.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in source.iterdir()):
        return source, None
    dataset = open_dataset(source)
    if not dataset.image_paths:
        raise click.BadParameter(f"{source}: dataset has no images folder", param_hint="IMAGES")
    items = sorted(set(dataset.interactions.frame["item_id"].astype(str)))
    return dataset.image_paths, items


@click.command("extract")
@click.argument("images", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output feature store folder.",
)
@click.option(
    "--backbone",
    default="resnet50",
    show_default=True,
    help="torchvision model name, efficientnet_lite0, or timm/<name>.",
)
@click.option(
    "--layer",
    default="pooled",
    show_default=True,
    help="'pooled' (penultimate vector) or a spatial layer, e.g. layer4 for ACF.",
)
@click.option(
    "--weights",
    default="imagenet",
    show_default=True,
    help="imagenet (download/cached), none (seeded random init) or a state-dict file.",
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(0),
    help="Decoding processes [default: sized to the machine].",
)
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    type=click.Choice(PRECISIONS),
    help="auto = bf16 on CUDA and AMX/AVX512-BF16 CPUs, else fp32.",
)
@click.option(
    "--dtype",
    default="float32",
    show_default=True,
    type=click.Choice(["float32", "float16"]),
    help="Storage dtype (float16 halves maps).",
)
@click.option(
    "--input-size", default=None, type=click.IntRange(8), help="Override the backbone's crop size."
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 [default: cuda if available].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the backbone (optional).")
@click.option(
    "--backend",
    default="torch",
    show_default=True,
    type=click.Choice(BACKENDS),
    help="onnx = ONNX Runtime on CPU, fp32 (pip install 'visrec[onnx]'; exported once, cached).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run without recomputing.")
@click.option("--overwrite", is_flag=True, help="Replace OUT (and any interrupted run of it).")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a TTY].")
def extract_cmd(
    images: Path,
    out: Path,
    backbone: str,
    layer: str,
    weights: str,
    batch_size: int,
    workers: int | None,
    precision: str,
    dtype: str,
    input_size: int | None,
    device: str | None,
    compile_: bool,
    backend: str,
    resume: bool,
    overwrite: bool,
    progress: bool | None,
) -> None:
    """Extract CNN features of every image in IMAGES (an image folder or a dataset folder) to OUT.

    Unreadable images are skipped and listed in OUT/report.json and OUT/failed.csv, as are items of
    the interactions without an image (when IMAGES is a dataset folder).
    """
    from visrec.distributed import local_device, torchrun
    from visrec.features.sharded import extract_sharded

    paths, items = _images_and_items(images)
    with torchrun() as ctx:  # under torchrun: one image shard per rank, merged by rank 0
        if ctx.active and device is None:
            device = local_device()
        store = extract_sharded(
            paths,
            out,
            ctx,
            items=items,
            backbone=backbone,
            layer=layer,
            weights=weights,
            precision=precision,
            dtype=dtype,
            input_size=input_size,
            batch_size=batch_size,
            workers=workers,
            device=device,
            compile=compile_,
            backend=backend,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        )
    if not ctx.is_main:
        return
    report = store.report
    click.echo(
        f"{out}: {len(store)} items, shape {tuple(store.array.shape)} {store.array.dtype}, "
        f"{store.meta['backbone']}/{store.meta['layer']} ({store.meta['weights']}, "
        f"{store.meta['precision']})"
    )
    click.echo(
        f"unreadable images: {report.get('n_failed', 0)}, items without image: "
        f"{report.get('n_missing_images', 0)}, refused files: {report.get('n_refused_files', 0)}, "
        f"speed: {report.get('images_per_s')} images/s"
    )
    if report.get("n_failed") or report.get("n_missing_images"):
        click.echo(f"details: {out / 'failed.csv'}")
    if report.get("n_refused_files"):
        click.echo(f"refused files (links leaving the folder, bad names): {out / 'report.json'}")


@click.group("features")
def features_group() -> None:
    """Inspect, import and export feature stores."""


@features_group.command("info")
@click.argument("store", type=click.Path(path_type=Path))
def info_cmd(store: Path) -> None:
    """Print a store's shape, metadata and extraction summary."""
    from visrec.features.store import FeatureStore

    opened = FeatureStore.open(store)
    click.echo(repr(opened))
    click.echo(json.dumps(opened.meta, indent=2))
    summary = {k: v for k, v in opened.report.items() if k not in ("failed", "missing_images")}
    click.echo(json.dumps(summary, indent=2))


@features_group.command("import-legacy")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path))
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Required: the tutorial's embedding-*.npy is a pickle, and unpickling an untrusted "
    "file can execute code. Only NumPy arrays are accepted even then.",
)
@click.option("--backbone", default="unknown", show_default=True, help="Recorded in meta.json.")
@click.option("--overwrite", is_flag=True)
def import_cmd(file: Path, out: Path, allow_pickle: bool, backbone: str, overwrite: bool) -> None:
    """Convert the tutorial's pickled embedding-*.npy ([id, vector] rows) into a safe store."""
    from visrec.features.legacy import import_legacy

    store = import_legacy(
        file, out, allow_pickle=allow_pickle, backbone=backbone, overwrite=overwrite
    )
    click.echo(f"{out}: {len(store)} items, dim {store.dim}")


@features_group.command("export-legacy")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_cmd(store: Path, out: Path) -> None:
    """Write a pooled store in the tutorial's format (pickled object array of [id, vector])."""
    from visrec.features.legacy import export_legacy
    from visrec.features.store import FeatureStore

    opened = FeatureStore.open(store)
    export_legacy(opened, out)
    click.echo(f"{out}: {len(opened)} rows (pickled; read with np.load(..., allow_pickle=True))")
