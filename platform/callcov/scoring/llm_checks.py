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
from callcov.scoring.chunks import render_head_tail, split_parts, transcript_lines
from callcov.scoring.combine import combine
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
    chunks: int = 0  # transcript parts the call was asked about in (0: the LLM was not asked)

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
            "chunks": self.chunks,
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


def transcript_parts(view: CallView) -> list[str]:
    """The transcript text of each LLM request: one when it fits in ``max_transcript_chars``; else
    the parts of ``llm.chunking`` (``chunks.py``), or without chunking its beginning and end only."""
    rules = view.rubric.llm
    lines = transcript_lines(view)
    if rules.chunking is None:
        return [render_head_tail(lines, rules.max_transcript_chars)]
    c = rules.chunking
    speakers = [s.speaker for s in view.segments]
    parts = split_parts(lines, rules.max_transcript_chars, c.overlap_turns, c.max_chunks, speakers)
    return [p.text for p in parts]


def build_messages(
    view: CallView,
    keys: list[str],
    missing_disclosures: list[str],
    schema: dict[str, Any],
    transcript: str | None = None,
) -> tuple[list[ChatMessage], str]:
    """The rendered prompt and its version label (``name/vN``); ``transcript`` defaults to the whole
    call (or its first part)."""
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
        transcript=transcript if transcript is not None else transcript_parts(view)[0],
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


async def _ask(
    llm: LLMClient,
    messages: list[ChatMessage],
    schema: dict[str, Any],
    tries: int,
    max_tokens: int,
    outcome: LLMOutcome,
) -> dict[str, Any] | None:
    """One schema-constrained request with bounded re-asks: the valid answer, or None (the reason in
    ``outcome.error``; ``outcome.rejected`` when the endpoint refused). Counts ``outcome.attempts``."""
    validator = Draft202012Validator(schema)
    asked = list(messages)
    for _ in range(tries):
        outcome.attempts += 1
        try:
            answer = await llm.chat_json(asked, schema, max_tokens=max_tokens)
        except LLMRequestRejected as exc:  # asking again will not help
            outcome.error = f"rejected by the LLM endpoint: {str(exc)[:280]}"
            outcome.rejected = True
            outcome.errors.append(outcome.error)
            return None
        except LLMOutputInvalid as exc:
            error: str | None = f"invalid output: {str(exc)[:280]}"
        else:
            error = _schema_error(validator, answer)
            if error is None:
                return dict(answer)
        outcome.errors.append(error or "invalid output")
        outcome.error = error
        retry = (
            f"Your previous answer was rejected ({error}). Answer again with one JSON object that "
            "satisfies the schema exactly, and nothing else."
        )
        asked = [*messages, ChatMessage(role="user", content=retry)]
    return None


async def _merged_summary(
    view: CallView, llm: LLMClient, summaries: list[str], tries: int, outcome: LLMOutcome
) -> str | None:
    """One more request: a summary of the whole call from the parts' summaries (None: no valid one).
    The prompt's version is added to ``outcome.prompt_version`` ("scoring/v1+summary/v1")."""
    rules = view.rubric.llm
    ref = rules.chunking.summary_prompt if rules.chunking else None
    if ref is None:
        return None
    prompt = load_prompt(ref.name, ref.version)
    outcome.prompt_version = f"{outcome.prompt_version}+{prompt.name}/v{prompt.version}"
    summary_schema = rules.json_schema["properties"]["summary"]
    schema = {"type": "object", "additionalProperties": False, "required": ["summary"],
              "properties": {"summary": summary_schema}}  # fmt: skip
    messages = prompt.render(
        direction=view.direction or "unknown",
        duration=f"{view.duration:.0f}",
        task=rules.tasks["summary"],
        schema=json.dumps(schema, separators=(",", ":")),
        summaries="\n".join(f"{k}. {s.strip()}" for k, s in enumerate(summaries, start=1)),
    )
    probe = LLMOutcome("degraded")
    answer = await _ask(llm, messages, schema, tries, rules.max_tokens, probe)
    outcome.attempts += probe.attempts
    outcome.errors.extend(f"summary of the parts: {e}" for e in probe.errors)
    return None if answer is None else str(answer["summary"])


async def ask_llm(
    view: CallView,
    llm: LLMClient | None,
    keys: list[str],
    missing_disclosures: list[str],
    *,
    attempts: int | None = None,
) -> LLMOutcome:
    """The judgement: one schema-constrained request per transcript part (one part unless the call is
    long and the rubric chunks), combined (``combine.py``); never raises for invalid output. Every
    part must answer validly, else the outcome is "degraded" (the first failing part ends the asking).
    Requests are bounded: parts x attempts, plus one summary request (x attempts) for several parts.
    ``outcome.attempts`` counts every request."""
    if not keys:
        return LLMOutcome("skipped")
    if llm is None:
        return LLMOutcome("not_configured", tuple(keys))
    rules = view.rubric.llm
    schema = build_schema(view.rubric, keys, missing_disclosures)
    texts = transcript_parts(view)
    outcome = LLMOutcome("degraded", tuple(keys), model=getattr(llm, "model", None), chunks=len(texts))
    answers = []
    tries = attempts or rules.attempts
    for k, text in enumerate(texts, start=1):
        messages, outcome.prompt_version = build_messages(view, keys, missing_disclosures, schema, text)
        answer = await _ask(llm, messages, schema, tries, rules.max_tokens, outcome)
        if answer is None:
            if len(texts) > 1:
                outcome.error = f"part {k} of {len(texts)}: {outcome.error}"
            return outcome
        answers.append(answer)
    answer = answers[0] if len(answers) == 1 else combine(answers, schema)
    if len(answers) > 1 and "summary" in keys:
        merged = await _merged_summary(view, llm, [a["summary"] for a in answers], tries, outcome)
        answer["summary"] = merged or answer["summary"]
    outcome.status, outcome.answer, outcome.error = "ok", answer, None
    return outcome
