"""The builders of ``visrec data fetch``: a downloaded archive or file set -> a visrec dataset folder
(interactions.csv, items.csv, images/, dataset.json and, when asked, features/), one per dataset of
:data:`visrec.data.fetch.RECIPES`, plus the zip helpers they share.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from visrec._io import atomic_open, write_json
from visrec.data.images import IMAGE_EXTENSIONS
from visrec.data.loaders import DatasetSource, load_movielens, load_wikimedia
from visrec.data.recipe import FetchContext
from visrec.data.ugallery import load_ugallery
from visrec.errors import DataError

log = logging.getLogger(__name__)


# ---- writing the folder ----------------------------------------------------------------------


def write_source(
    source: DatasetSource, out: Path, *, images: bool, extra: dict | None = None
) -> dict:
    """Write interactions.csv, items.csv and dataset.json for ``source`` into ``out``; return counts."""
    frame = source.interactions.frame
    with atomic_open(out / "interactions.csv", "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)
    manifest: dict = {"name": source.name, "interactions": "interactions.csv"}
    if source.items is not None:
        with atomic_open(out / "items.csv", "w", encoding="utf-8", newline="") as handle:
            source.items.to_csv(handle, index=True)
        manifest["items"] = "items.csv"
    if images:
        manifest["images"] = "images"
    manifest.update(extra or {})
    write_json(out / "dataset.json", manifest)
    counts = {
        "users": int(frame["user_id"].nunique()),
        "items_with_interactions": int(frame["item_id"].nunique()),
        "interactions": len(frame),
        "repeated_pairs_dropped": source.interactions.n_duplicates_dropped,
    }
    if source.interactions.has_evaluation:
        counts["test_interactions"] = int(frame["evaluation"].sum())
    if source.items is not None:
        counts["catalogue_items"] = len(source.items)
    if source.image_paths is not None:
        counts["images"] = len(source.image_paths)
        counts["items_without_image"] = len(set(frame["item_id"]) - set(source.image_paths))
    return counts


# ---- archives --------------------------------------------------------------------------------


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"not a readable zip archive ({exc})", path=path) from exc


def csv_header(archive: zipfile.ZipFile, member: str) -> list[str]:
    with archive.open(member) as handle:
        first = handle.readline().decode("utf-8-sig", errors="replace")
    return [c.strip().strip('"') for c in first.strip().split(",")]


def extract_member(archive: zipfile.ZipFile, member: str, dest: Path) -> Path:
    """Copy one member to ``dest`` (its own name is never used as a path: no zip-slip)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(member) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def extract_images(archive: zipfile.ZipFile, dest: Path) -> tuple[int, list[str]]:
    """Every member with an image extension -> ``dest/<basename>``; returns (count, skipped clashes)."""
    seen: dict[str, str] = {}
    skipped = []
    for member in archive.namelist():
        base = member.rsplit("/", 1)[-1]
        if member.endswith("/") or Path(base).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if base.startswith("._") or "__MACOSX/" in member:
            continue
        if base.lower() in seen:
            skipped.append(member)
            continue
        seen[base.lower()] = member
        extract_member(archive, member, dest / base)
    if skipped:
        log.warning(
            "%d image(s) with a repeated file name were skipped, e.g. %s", len(skipped), skipped[0]
        )
    return len(seen), skipped


def import_embeddings(ctx: FetchContext, npy: Path, out: Path):
    """Convert a tutorial ``embedding-*.npy`` (pickled ``[id, vector]`` rows) into a FeatureStore.

    Asking for embeddings (``--embeddings``) is the explicit opt-in: the pickle is read only through
    ``ctx.convert_embeddings`` (:func:`visrec.features.legacy.import_tutorial_embeddings`, a restricted
    unpickler), which the ``visrec data fetch`` command passes in.
    """
    if ctx.convert_embeddings is None:
        raise DataError(
            "converting embeddings needs visrec.features.legacy, which is not available; "
            "fetch without --embeddings",
            path=npy,
        )
    return ctx.convert_embeddings(npy, out)


def feature_counts(store, item_ids: set[str]) -> dict:
    covered = {str(i) for i in store.ids}
    return {"feature_vectors": len(store), "items_without_features": len(item_ids - covered)}


# ---- builders --------------------------------------------------------------------------------


def find_wikimedia_csvs(archive: zipfile.ZipFile, path: Path) -> tuple[str, str]:
    """The train and test CSVs of the tutorial's zip, recognised by their ``user,image_id,timestamp``
    header; the test one has ``test`` or ``eval`` in its name."""
    matches = [
        m
        for m in archive.namelist()
        if m.lower().endswith(".csv")
        and "__MACOSX/" not in m
        and {"user", "image_id", "timestamp"} <= set(csv_header(archive, m))
    ]
    tests = [m for m in matches if any(w in m.rsplit("/", 1)[-1].lower() for w in ("test", "eval"))]
    trains = [m for m in matches if m not in tests]
    if len(tests) != 1 or len(trains) != 1:
        raise DataError(
            "expected one train and one test CSV with the header user,image_id,timestamp (the test "
            f"one named *test* or *eval*); found {matches or 'none'}",
            path=path,
        )
    return trains[0], tests[0]


def build_wikimedia(ctx: FetchContext, out: Path) -> dict:
    zip_path = ctx.obtain("zip")
    with open_zip(zip_path) as archive:
        train_member, test_member = find_wikimedia_csvs(archive, zip_path)
        train = extract_member(archive, train_member, ctx.scratch / "train.csv")
        test = extract_member(archive, test_member, ctx.scratch / "test.csv")
        n_images, skipped = extract_images(archive, out / "images")
        inside = [m for m in archive.namelist() if m.endswith("embedding-resnet50.npy")]
        npy = (
            extract_member(archive, inside[0], ctx.scratch / "emb.npy")
            if (inside and ctx.embeddings)
            else None
        )
    if n_images == 0:
        raise DataError("the archive holds no images (jpg, png, ...)", path=zip_path)
    source = load_wikimedia(train, test, images_dir=out / "images")
    extra, store = {"split": "given"}, None
    if ctx.embeddings:
        store = import_embeddings(ctx, npy or ctx.obtain("embeddings"), out / "features")
        extra["features"] = "features"
    counts = write_source(source, out, images=True, extra=extra)
    if store is not None:
        ids = set(source.interactions.frame["item_id"]) | set(source.image_paths or {})
        counts.update(feature_counts(store, ids))
    counts["images_skipped_repeated_name"] = len(skipped)
    return counts


def build_movielens(ctx: FetchContext, out: Path) -> dict:
    zip_path = ctx.obtain("zip")
    raw = ctx.scratch / "ml-100k"
    with open_zip(zip_path) as archive:
        for wanted in ("u.data", "u.item", "u.genre"):
            members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == wanted]
            if not members and wanted != "u.genre":
                raise DataError(f"the archive has no {wanted}", path=zip_path)
            if members:
                extract_member(archive, members[0], raw / wanted)
    return write_source(load_movielens(raw), out, images=False)


def build_ugallery(ctx: FetchContext, out: Path) -> dict:
    source = load_ugallery(
        ctx.obtain("purchases"),
        ctx.obtain("inventory"),
        ctx.obtain("clusters"),
        columns=ctx.columns,
    )
    extra, store = {"split": "leave-last-out"}, None
    if ctx.embeddings:
        store = import_embeddings(ctx, ctx.obtain("embeddings"), out / "features")
        extra["features"] = "features"
    counts = write_source(source, out, images=False, extra=extra)
    if store is not None:
        ids = set(source.interactions.frame["item_id"]) | set(source.items.index)
        counts.update(feature_counts(store, ids))
    return counts
