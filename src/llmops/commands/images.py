"""`llmops images build|list`: the real node's images, built here offline (llmops.cluster.images)."""

from __future__ import annotations

import argparse
from typing import Any

from llmops.cluster import images


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "images",
        help="build or list the images the local cluster's real node runs (buildah, offline, cached)",
        description=(
            "Images named localhost/llmops/<what>:<version>, built from pinned inputs with buildah and cached "
            f"by content key under {images.images_dir()}; `llmops cluster up` builds what is missing and "
            "imports them into the real node."
        ),
    )
    isub = parser.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    p_build = isub.add_parser("build", help="build (or find in the cache) the named images, or all")
    p_build.add_argument("names", nargs="*", help=f"image names (default: all of {', '.join(images.recipes())})")
    p_build.set_defaults(func=_build)
    p_list = isub.add_parser("list", help="the table of images and their references")
    p_list.set_defaults(func=_list)


def _build(args: argparse.Namespace) -> int:
    built = images.build_all(args.names or None, lambda m: print(m, flush=True))
    for name, archive in built.items():
        print(f"{images.ref(name)}  {archive}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for recipe in images.recipes().values():
        print(f"{recipe.ref}  ({recipe.base})")
    return 0
