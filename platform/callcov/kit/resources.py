"""Data files the package reads at run time: scoring rubrics, prompt templates and migrations.

An installed wheel carries them as package data under ``callcov/_data/`` (``force-include`` in
``pyproject.toml``); a checkout (editable install, tests) reads them where they are kept: ``models/``
and ``platform/migrations/``. Nothing is read here at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Resource = Literal["rubrics", "prompts", "migrations"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_IN_CHECKOUT: dict[str, tuple[str, ...]] = {
    "rubrics": ("models", "rubrics"),
    "prompts": ("models", "prompts"),
    "migrations": ("platform", "migrations"),
}


def resource_dir(name: Resource) -> Path:
    """The directory of ``name``: the packaged copy when installed, else the checkout's."""
    packaged = PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    return PACKAGE_DIR.parents[1].joinpath(*_IN_CHECKOUT[name])
