"""Request and response bodies of /rubrics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callcov.kit.text import SafeStr


class RubricCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeStr = Field(min_length=1, max_length=255)
    description: SafeStr = Field(default="", max_length=2000)
    document: dict[str, Any] = Field(
        description="The rubric: the JSON form of a rubric file (GET /rubrics/schema). Its `id` and "
        "`version`, if given, are replaced by the rubric's."
    )


class RubricVersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]


class RubricSummary(BaseModel):
    id: str
    object: Literal["rubric"] = "rubric"
    name: str
    description: str
    builtin: bool
    version: str = Field(description="The version of the document shown (the latest, in lists).")
    latest_version: str
    versions: list[str]
    archived: bool
    livemode: bool | None = Field(description="None for the built-in rubrics, which every mode shares.")
    created: int | None = Field(description="Unix seconds; None for the built-in rubrics.")


class RubricPublic(RubricSummary):
    document: dict[str, Any]
