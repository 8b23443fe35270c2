"""The built-in rubrics (``models/rubrics/<id>/v<N>.yaml``), read through ``callcov.scoring.rubric``."""

from __future__ import annotations

from callcov.kit.resources import resource_dir
from callcov.scoring.rubric import Rubric, load_rubric


def builtin_ids() -> list[str]:
    base = resource_dir("rubrics")
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("v*.yaml")))


def builtin_versions(rubric_id: str) -> list[int]:
    folder = resource_dir("rubrics") / rubric_id
    numbers = []
    for path in folder.glob("v*.yaml"):
        stem = path.name.removesuffix(".yaml")[1:]
        if stem.isdigit():
            numbers.append(int(stem))
    return sorted(numbers)


def builtin(rubric_id: str, version: int | None = None) -> Rubric:
    """Raises ``RubricNotFound`` (or ``RubricInvalid``)."""
    return load_rubric(rubric_id, version)
