"""The judgement checks asked of the LLM in one call: empathy, sentiment, call structure, coaching,
summary and paraphrased disclosures (only those the rules did not find). The answer is constrained by
the rubric's JSON schema (reduced to the keys asked) and validated again here. An invalid answer
(``LLMOutputInvalid`` or a schema violation) is re-asked up to ``attempts`` tries in total, then the
outcome is "degraded" and the scorer falls back to the rule parts. ``InferenceError`` (a transient
backend failure) is not caught: the caller retries the whole job."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator

from callcov.inference.ports import ChatMessage, LLMClient, LLMOutputInvalid, LLMRequestRejected
from callcov.inference.transcript import ROLE_LABELS
from callcov.scoring.rubric import Rubric, load_prompt
from callcov.scoring.view import CallView

JUDGEMENT_KEYS = ("empathy", "sentiment_analysis", "call_structure", "coaching", "summary")
DISCLOSURE_KEY = "paraphrased_disclosures"
LLMStatus = Literal["ok", "degraded", "skipped", "not_configured"]
# ``results.evaluation.llm``: did the LLM evaluate the call, or did the scoring fall back to the rules?
EVALUATION = {
    "ok": "evaluated",
    "degraded": "degraded",
    "skipped": "skipped",
    "not_configured": "not_configured",
}


@dataclass
class LLMOutcome:
    """What the LLM part produced: ``answer`` is set only when ``status`` is "ok"."""

    status: LLMStatus
    keys: tuple[str, ...] = ()
    answer: dict[str, Any] | None = None
    attempts: int = 0
    error: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    errors: list[str] = field(default_factory=list)
    rejected: bool = False  # the endpoint refused the request (not re-asked)

    def part(self, key: str) -> dict[str, Any] | Any | None:
        """The answer's value for ``key`` (None unless the LLM answered validly)."""
        return None if self.answer is None else self.answer.get(key)

    @property
    def reason(self) -> str:
        """Why an LLM check fell back, for the checks' ``reason``."""
        if self.status == "not_configured":
            return "no LLM configured"
        if self.status == "skipped":
            return "not asked of the LLM at this analysis level"
        return f"LLM answer invalid after {self.attempts} attempt(s)"

    def evaluation(self) -> dict[str, Any]:
        """``results.evaluation``: evaluated | degraded | skipped | not_configured, and why not."""
        reason: str | None = None
        if self.status == "degraded":
            reason = self.error if self.rejected else f"{self.reason}: {self.error or 'invalid output'}"
        elif self.status != "ok":
            reason = self.reason
        return {
            "llm": EVALUATION[self.status],
            "model": self.model,
            "attempts": self.attempts,
            "reason": reason,
        }


def build_schema(rubric: Rubric, keys: list[str], missing_disclosures: list[str]) -> dict[str, Any]:
    """The rubric's answer schema reduced to ``keys``; disclosure ids limited to the missing ones."""
    full = copy.deepcopy(rubric.llm.json_schema)
    properties = {k: full["properties"][k] for k in keys}
    if DISCLOSURE_KEY in properties:
        item = properties[DISCLOSURE_KEY]["items"]
        item["properties"]["id"]["enum"] = list(missing_disclosures)
    return {**full, "properties": properties, "required": list(keys)}


def _line(view: CallView, index: int) -> str:
    seg = view.segments[index]
    role = view.role_of(seg.speaker)
    label = ROLE_LABELS.get(role, role)
    return f"[{seg.start:.1f}-{seg.end:.1f}] {label}: {seg.text.strip()}"


def render_transcript(view: CallView, max_chars: int) -> str:
    """One line per segment; a long call keeps its beginning and its end within ``max_chars``."""
    lines = [_line(view, i) for i in range(len(view.segments))]
    if sum(len(line) + 1 for line in lines) <= max_chars:
        return "\n".join(lines)
    head: list[str] = []
    tail: list[str] = []
    budget = max_chars // 2
    for line in lines:
        if sum(len(x) + 1 for x in head) + len(line) + 1 > budget:
            break
        head.append(line)
    for line in reversed(lines[len(head) :]):
        if sum(len(x) + 1 for x in tail) + len(line) + 1 > budget:
            break
        tail.insert(0, line)
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"[... {omitted} turns omitted ...]", *tail])


def build_messages(
    view: CallView, keys: list[str], missing_disclosures: list[str], schema: dict[str, Any]
) -> tuple[list[ChatMessage], str]:
    """The rendered prompt and its version label (``name/vN``)."""
    rubric = view.rubric
    prompt = load_prompt(rubric.llm.prompt.name, rubric.llm.prompt.version)
    by_id = {d.id: d for d in rubric.disclosures}
    disclosures = [f"- {i}: {' '.join(by_id[i].description.split())}" for i in missing_disclosures]
    messages = prompt.render(
        direction=view.direction or "unknown",
        duration=f"{view.duration:.0f}",
        tasks="\n".join(f"- {rubric.llm.tasks[k]}" for k in keys),
        disclosures="\n".join(disclosures) or "(none)",
        schema=json.dumps(schema, separators=(",", ":")),
        transcript=render_transcript(view, rubric.llm.max_transcript_chars),
    )
    return messages, f"{prompt.name}/v{prompt.version}"


def _schema_error(validator: Draft202012Validator, answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return "the answer is not a JSON object"
    error = next(iter(sorted(validator.iter_errors(answer), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"[:300]


async def ask_llm(
    view: CallView,
    llm: LLMClient | None,
    keys: list[str],
    missing_disclosures: list[str],
    *,
    attempts: int | None = None,
) -> LLMOutcome:
    """One schema-constrained call with bounded re-asks; never raises for invalid output."""
    if not keys:
        return LLMOutcome("skipped")
    if llm is None:
        return LLMOutcome("not_configured", tuple(keys))
    rules = view.rubric.llm
    schema = build_schema(view.rubric, keys, missing_disclosures)
    validator = Draft202012Validator(schema)
    messages, version = build_messages(view, keys, missing_disclosures, schema)
    outcome = LLMOutcome("degraded", tuple(keys), model=getattr(llm, "model", None), prompt_version=version)
    asked = list(messages)
    for attempt in range(1, (attempts or rules.attempts) + 1):
        outcome.attempts = attempt
        try:
            answer = await llm.chat_json(asked, schema, max_tokens=rules.max_tokens)
        except LLMRequestRejected as exc:  # asking again will not help
            outcome.error = f"rejected by the LLM endpoint: {str(exc)[:280]}"
            outcome.rejected = True
            outcome.errors.append(outcome.error)
            return outcome
        except LLMOutputInvalid as exc:
            error: str | None = f"invalid output: {str(exc)[:280]}"
        else:
            error = _schema_error(validator, answer)
            if error is None:
                outcome.status, outcome.answer, outcome.error = "ok", answer, None
                return outcome
        outcome.errors.append(error or "invalid output")
        outcome.error = error
        retry = (
            f"Your previous answer was rejected ({error}). Answer again with one JSON object that "
            "satisfies the schema exactly, and nothing else."
        )
        asked = [*messages, ChatMessage(role="user", content=retry)]
    return outcome
