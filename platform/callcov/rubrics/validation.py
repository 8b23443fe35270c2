"""Checking a rubric document before it is stored: size and count caps, the ``Rubric`` model of
``callcov.scoring.rubric`` (the same validation as the built-in files), the prompt it names, and the
safety of its regular expressions. Every refusal is a 422 naming the path of the bad field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from callcov.rubrics.regex_safety import nested_quantifier, slow_patterns
from callcov.scoring.rubric import Rubric, RubricNotFound, load_prompt

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_LIST_ITEMS = 200  # patterns per section, disclosures, prohibited phrases, points, ...
MAX_PATTERN_CHARS = 500
MAX_STRING_CHARS = 4000

Loc = tuple[str | int, ...]
BASE: Loc = ("body", "document")


def refuse(loc: Loc, message: str, kind: str = "value_error", value: Any = None) -> RequestValidationError:
    error: dict[str, Any] = {"type": kind, "loc": (*BASE, *loc), "msg": message}
    if value is not None:
        error["input"] = value
    return RequestValidationError([error])


def _caps(value: Any, loc: Loc) -> None:
    """Lists of at most MAX_LIST_ITEMS and strings of at most MAX_STRING_CHARS, anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            _caps(item, (*loc, str(key)))
    elif isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise refuse(
                loc, f"List should have at most {MAX_LIST_ITEMS} items, not {len(value)}", "too_long"
            )
        for i, item in enumerate(value):
            _caps(item, (*loc, i))
    elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        raise refuse(loc, f"String should have at most {MAX_STRING_CHARS} characters", "string_too_long")


def pattern_fields(rubric: Rubric) -> Iterator[tuple[Loc, str]]:
    """Every regular expression of a rubric, with its path in the document."""
    lists: list[tuple[Loc, list[str]]] = [
        (("roles", "agent_cues"), rubric.roles.agent_cues),
        (("identity", "patterns"), rubric.identity.patterns),
        (("purpose", "patterns"), rubric.purpose.patterns),
        (("purpose", "inbound_cues"), rubric.purpose.inbound_cues),
        (("greeting", "patterns"), rubric.greeting.patterns),
        (("closing", "patterns"), rubric.closing.patterns),
        (("empathy", "patterns"), rubric.empathy.patterns),
    ]
    lists += [(("disclosures", i, "patterns"), d.patterns) for i, d in enumerate(rubric.disclosures)]
    for loc, patterns in lists:
        for j, pattern in enumerate(patterns):
            yield (*loc, j), pattern
    for i, phrase in enumerate(rubric.prohibited_phrases):
        yield ("prohibited_phrases", i, "pattern"), phrase.pattern


def _model(document: dict[str, Any]) -> Rubric:
    try:
        return Rubric.model_validate(document)
    except ValidationError as exc:
        errors = [{**e, "loc": (*BASE, *e["loc"])} for e in exc.errors(include_url=False)]
        for e in errors:
            if e.get("loc") == BASE:  # a model-level rule: its message says which field
                e.pop("input", None)
        raise RequestValidationError(errors) from exc


async def validate_document(document: dict[str, Any], rubric_id: str, version: int) -> Rubric:
    """The ``Rubric`` of ``document`` as version ``version`` of ``rubric_id`` (the document's own
    ``id`` and ``version``, if any, are replaced), or RequestValidationError (422)."""
    _caps(document, ())
    if len(orjson.dumps(document)) > MAX_DOCUMENT_BYTES:
        raise refuse((), f"The document is larger than {MAX_DOCUMENT_BYTES} bytes", "too_large")
    rubric = _model({**document, "id": rubric_id, "version": str(version)})
    try:
        load_prompt(rubric.llm.prompt.name, rubric.llm.prompt.version)
    except RubricNotFound as exc:
        raise refuse(("llm", "prompt"), f"Unknown prompt: {exc}") from exc
    fields = list(pattern_fields(rubric))
    for loc, pattern in fields:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise refuse(loc, f"A pattern has at most {MAX_PATTERN_CHARS} characters", "string_too_long")
        if nested_quantifier(pattern):
            raise refuse(
                loc,
                "The pattern nests an unbounded quantifier in a repeated group (catastrophic "
                "backtracking); rewrite it without the nesting",
                "regex_unsafe",
                pattern,
            )
    slow = await slow_patterns([pattern for _, pattern in fields])
    if slow:
        loc, pattern = fields[slow[0]]
        raise refuse(
            loc,
            "The pattern is too slow on adversarial text (catastrophic backtracking)",
            "regex_unsafe",
            pattern,
        )
    return rubric
