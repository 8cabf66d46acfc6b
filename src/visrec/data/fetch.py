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
The recipe types are in :mod:`visrec.data.recipe`, the per-dataset builders in :mod:`visrec.data.converters`.
Every URL can be redirected (``base_url=`` or ``$VISREC_FETCH_URL``: ``<base>/<file name>``) and every
file can be placed by hand (``from_files={"zip": path}``, CLI ``--from-file zip=PATH``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from visrec._io import atomic_dir, atomic_open
from visrec.data.converters import build_movielens, build_ugallery, build_wikimedia
from visrec.data.download import FileCache, gdrive_url
from visrec.data.recipe import Card, FetchContext, Part, Recipe
from visrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BASE_URL_ENV = "VISREC_FETCH_URL"


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
