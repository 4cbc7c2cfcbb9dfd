"""Where the catalog's data lives: the repository's top-level `devices/` and `models/` folders.

Those folders are the only copies. A source checkout (or an editable install) reads them in
place; a wheel carries them as the data packages `suite.catalog.devices` and
`suite.catalog.models` (pyproject.toml's `package-dir` maps the folders there), so an
installed edgebench finds the same files without a mirrored copy in the source tree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The repository root of a source checkout (in a wheel install: site-packages, unused).
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_FOLDERS = ("devices", "models")


def data_dir(name: str) -> Path:
    """The folder `name` ("devices" or "models"): the wheel's data package, else the checkout's."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"no catalog data folder {name!r} (one of {DATA_FOLDERS})")
    spec = importlib.util.find_spec(f"suite.catalog.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return REPO_ROOT / name
