"""``visrec data fetch NAME``: download a public dataset and write a ready-to-use visrec dataset folder.

Datasets (see ``docs/data.md`` for licences and citations):

- ``wikimedia``: the IUI 2021 VisRec tutorial's Wikimedia Commons sample (Google Drive zip with train and
  test CSVs ``user,image_id,timestamp`` and the images); optionally its precomputed ResNet50 embeddings.
- ``ugallery``: CuratorNet's UGallery purchases, inventory, visual clusters and ResNet50 embeddings (no
  images exist publicly).
- ``movielens-100k``: the GroupLens archive (ratings as implicit interactions, the movie table).

The output folder holds ``interactions.csv``, ``items.csv`` (when the data has item attributes),
``images/`` (when it has images), ``dataset.json``, ``CARD.md`` (source, licence, citation, counts,
checksums) and ``features/`` (embeddings converted through the explicit legacy import, when asked).
Every URL can be redirected (``base_url=`` or ``$VISREC_FETCH_URL``: ``<base>/<file name>``) and every
file can be placed by hand (``from_files={"zip": path}``, CLI ``--from-file zip=PATH``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visrec._io import atomic_dir, atomic_open, write_json
from visrec.data.download import FileCache, Remote, gdrive_url
from visrec.data.images import IMAGE_EXTENSIONS
from visrec.data.loaders import DatasetSource, load_movielens, load_wikimedia
from visrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BASE_URL_ENV = "VISREC_FETCH_URL"


@dataclass(frozen=True)
class Part:
    """One downloadable file of a dataset. ``key`` names it in ``--from-file KEY=PATH``."""

    key: str
    filename: str
    url: str
    optional: bool = False


@dataclass(frozen=True)
class Card:
    title: str
    homepage: str
    licence: str
    citation: str
    notes: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    parts: tuple[Part, ...]
    card: Card
    build: Callable[[FetchContext, Path], dict]


@dataclass
class FetchContext:
    """What a builder needs: the parts (obtained lazily), options, and a scratch folder."""

    recipe: Recipe
    cache: FileCache
    scratch: Path
    base_url: str | None = None
    from_files: dict[str, Path] = field(default_factory=dict)
    embeddings: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    convert_embeddings: Callable[[Path, Path], object] | None = None
    """Tutorial ``.npy`` -> feature store (the features layer's legacy import; see import_embeddings)."""

    def remote(self, key: str) -> Remote:
        part = next((p for p in self.recipe.parts if p.key == key), None)
        if part is None:
            raise KeyError(key)
        url = f"{self.base_url.rstrip('/')}/{part.filename}" if self.base_url else part.url
        return Remote(part.filename, url, page=part.url)

    def obtain(self, key: str) -> Path:
        remote = self.remote(key)
        path = self.cache.obtain(remote, from_file=self.from_files.get(key))
        entry = self.cache.registry().get(remote.name, {})
        self.files[key] = {
            "file": remote.name,
            "url": remote.url,
            "size": entry.get("size"),
            "sha256": entry.get("sha256"),
        }
        return path


def fetch_dataset(
    name: str,
    out: str | Path,
    *,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    from_files: dict[str, str | Path] | None = None,
    embeddings: bool = False,
    convert_embeddings: Callable[[Path, Path], object] | None = None,
    columns: dict[str, str] | None = None,
    force: bool = False,
    retries: int = 4,
) -> Path:
    """Download (or take from the cache / ``from_files``) dataset ``name`` and write it to ``out``.

    ``embeddings`` asks for the precomputed embeddings too, converted by ``convert_embeddings``
    (``visrec.features.legacy.import_tutorial_embeddings``; the data layer does not write stores).
    """
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(sorted(RECIPES))}")
    recipe, out = RECIPES[name], Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise DataError(
            "output folder exists and is not empty (use --force to replace it)", path=out
        )
    cache = FileCache(cache_dir, retries=retries)
    cache.root.mkdir(parents=True, exist_ok=True)
    placed = match_from_files(recipe, from_files or {})
    with (
        tempfile.TemporaryDirectory(prefix="fetch-", dir=cache.root) as scratch,
        atomic_dir(out) as tmp,
    ):
        ctx = FetchContext(
            recipe,
            cache,
            Path(scratch),
            base_url or os.environ.get(BASE_URL_ENV),
            placed,
            embeddings,
            dict(columns or {}),
            convert_embeddings=convert_embeddings,
        )
        counts = recipe.build(ctx, tmp)
        write_card(tmp / "CARD.md", recipe, ctx, counts)
    log.info("%s written to %s", name, out)
    return out


def match_from_files(recipe: Recipe, given: dict[str, str | Path]) -> dict[str, Path]:
    """Map ``--from-file`` entries (by key, by file name, or the only required part) to part keys."""
    keys = {p.key: p for p in recipe.parts}
    by_name = {p.filename: p.key for p in recipe.parts}
    required = [p.key for p in recipe.parts if not p.optional]
    placed: dict[str, Path] = {}
    for label, path in given.items():
        path = Path(path)
        key = label if label in keys else by_name.get(label) or by_name.get(path.name)
        if key is None and label in ("", path.name) and len(required) == 1:
            key = required[0]
        if key is None:
            choices = ", ".join(f"{p.key} ({p.filename})" for p in recipe.parts)
            raise ConfigError(
                f"--from-file {label + '=' if label else ''}{path}: which file of "
                f"{recipe.name} is it? Use KEY=PATH with KEY one of {choices}"
            )
        placed[key] = path
    return placed


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


def write_card(path: Path, recipe: Recipe, ctx: FetchContext, counts: dict) -> None:
    card = recipe.card
    lines = [
        f"# {card.title}",
        "",
        f"Fetched with `visrec data fetch {recipe.name}`.",
        "",
        f"- Source: {card.homepage}",
        f"- Licence: {card.licence}",
        "",
        "## Citation",
        "",
        card.citation,
        "",
        "## Counts",
        "",
    ]
    lines += [f"- {key.replace('_', ' ')}: {value:,}" for key, value in counts.items()]
    lines += ["", "## Files", "", "| key | file | url | bytes | sha256 |", "|---|---|---|---|---|"]
    for key, info in ctx.files.items():
        lines.append(
            f"| {key} | {info['file']} | {info['url']} | {info['size']} | {info['sha256']} |"
        )
    if card.notes:
        lines += ["", "## Notes", "", card.notes]
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


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
    from visrec.data.ugallery import load_ugallery

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


# ---- the datasets ----------------------------------------------------------------------------

_TUTORIAL = "https://github.com/ialab-puc/VisualRecSys-Tutorial-IUI2021"
_VISREC_CITATION = (
    "Denis Parra, Antonio Ossa-Guerra, Manuel Cartagena, Patricio Cerda-Mardini and Felipe del Rio. "
    "VisRec: A Hands-on Tutorial on Deep Learning for Visual Recommender Systems. IUI 2021 "
    "Companion (26th International Conference on Intelligent User Interfaces), 2021."
)

RECIPES: dict[str, Recipe] = {
    "wikimedia": Recipe(
        "wikimedia",
        (
            Part("zip", "wikimedia_recsys.zip", gdrive_url("1rXRT4Pa1opD_3koIQ2uvImjBlACcdC6R")),
            Part(
                "embeddings",
                "embedding-resnet50.npy",
                gdrive_url("1UACSDRMQQt7XhTg96O-MkGKka-TGaxls"),
                optional=True,
            ),
        ),
        Card(
            "Wikimedia Commons sample of the IUI 2021 VisRec tutorial",
            _TUTORIAL,
            "not stated by the tutorial; the images are Wikimedia Commons files, each under its own "
            "free licence (see the file's Commons page)",
            _VISREC_CITATION,
            "`interactions.csv` keeps the tutorial's own split: `evaluation` is true on the rows of its "
            "test CSV (use `SplitSpec(method='given')`). Repeated (user, item) rows keep the latest.",
        ),
        build_wikimedia,
    ),
    "ugallery": Recipe(
        "ugallery",
        (
            Part("purchases", "purchases.csv", gdrive_url("1tSTFCOj5WhQQFNPQsknfGF9pG1Cud7f4")),
            Part("inventory", "inventory.csv", gdrive_url("1Eskmof-qehDlp0-aiw60dP0dFVs6f2Fa")),
            Part("clusters", "clusters.json", gdrive_url("19eHFoWexE-iqvpQZHDimAZqTNLdqVGOg")),
            Part(
                "embeddings",
                "resnet_embeddings.npy",
                gdrive_url("1fIplLP0Oyuilv-VgkbgAUzON7fKc2NUX"),
                optional=True,
            ),
        ),
        Card(
            "UGallery purchases (CuratorNet)",
            "https://github.com/ialab-puc/CuratorNet",
            "not stated; anonymised (hashed ids) data shared by the authors for research",
            "Pablo Messina, Manuel Cartagena, Patricio Cerda-Mardini, Felipe del Rio and Denis Parra. "
            "CuratorNet: Visually-aware Recommendation of Art Images. arXiv:2009.04426, 2020.",
            "No images: only ResNet50 embeddings were published. `items.csv` has `group` = artist and "
            "`cluster` = the published visual cluster. The default leave-last-out split holds out each "
            "user's last basket (same user and timestamp), as in CuratorNet.",
        ),
        build_ugallery,
    ),
    "movielens-100k": Recipe(
        "movielens-100k",
        (Part("zip", "ml-100k.zip", "https://files.grouplens.org/datasets/movielens/ml-100k.zip"),),
        Card(
            "MovieLens 100K",
            "https://grouplens.org/datasets/movielens/100k/",
            "GroupLens research licence: research use only, no redistribution, cite the paper below",
            "F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and Context. ACM "
            "Transactions on Interactive Intelligent Systems 5(4): 19, 2015.",
            "Every rating is kept as an implicit interaction (the `rating` column allows a threshold). "
            "`items.csv`: title and `group` = first genre. No posters: add an images folder yourself.",
        ),
        build_movielens,
    ),
}
