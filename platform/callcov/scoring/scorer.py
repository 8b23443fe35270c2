"""``score``: the whole analysis of one transcript under one rubric, as the contract's ``results``.

Levels:
- "full" (paid plans): compliance, quality, coaching and summary; the LLM is asked once for the
  judgement checks (and for paraphrased disclosures when a disclosure's patterns did not match).
- "compliance" (free plan, "transcription and compliance"): compliance only. The LLM is asked only
  when a disclosure is missing (paraphrase check); every quality check is ``not_applicable``, coaching
  is ``not_applicable`` with no recommendations and a null effort score, and the summary is the
  deterministic compliance summary.
Without an LLM, or when its answer stays invalid, the scoring still completes with the rule parts
(``llm_degraded``). ``InferenceError`` from the LLM propagates so that the job is retried."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from callcov.inference.ports import LLMClient
from callcov.inference.transcript import Transcript
from callcov.scoring import judgement, rules, sensitive, timing
from callcov.scoring.llm_checks import DISCLOSURE_KEY, JUDGEMENT_KEYS, LLMOutcome, LLMStatus, ask_llm
from callcov.scoring.redaction import redact_transcript
from callcov.scoring.rubric import Rubric, load_rubric
from callcov.scoring.summary import rule_summary
from callcov.scoring.verdicts import with_verdicts
from callcov.scoring.view import CallView, build_view, make_check

Level = Literal["compliance", "full"]
NOT_IN_LEVEL = "not part of the 'compliance' analysis level"
QUALITY_EMPTY: dict[str, dict[str, Any]] = {
    "greeting": {"proper_greeting": None, "timestamp": None, "flagged": False, "match": None},
    "sentiment_analysis": dict.fromkeys(
        (
            "agent_sentiment",
            "customer_sentiment",
            "customer_sentiment_start",
            "customer_sentiment_end",
            "sentiment_shift",
        )
    ),
    "empathy": {"shown": None},
    "interruptions": timing.INTERRUPTIONS_EMPTY,
    "call_structure": {"opening": None, "resolution": None, "closing": None, "flagged": False},
    "talk_metrics": timing.TALK_EMPTY,
}


class ScoringResult(BaseModel):
    """The contract's ``results`` plus what the analysis row records about how they were made."""

    results: dict[str, Any]
    level: Level
    rubric_id: str
    rubric_version: str
    prompt_version: str | None  # "scoring/v1" when the LLM was asked ("scoring/v1+summary/v1": in parts)
    llm_model: str | None
    llm_status: LLMStatus  # ok | degraded | skipped (not asked) | not_configured
    llm_degraded: bool  # the LLM was needed but gave no valid answer: rule fallbacks were used
    llm_attempts: int
    llm_error: str | None
    summary_source: Literal["llm", "rule"]
    roles_inferred: bool

    @property
    def evaluation(self) -> dict[str, Any]:
        """``results.evaluation``: whether the LLM evaluated the call, and why not."""
        evaluation: dict[str, Any] = self.results["evaluation"]
        return evaluation

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model_dump(exclude={"results"})


def compliance_section(view: CallView) -> dict[str, Any]:
    """Requirements 1-5, rules only."""
    return {
        "identity_verification": rules.identity_verification(view),
        "mandatory_disclosures": rules.mandatory_disclosures(view),
        "purpose_declaration": rules.purpose_declaration(view),
        "prohibited_phrases": rules.prohibited_phrases(view),
        "sensitive_data": sensitive.sensitive_data(view),
    }


def quality_section(view: CallView, outcome: LLMOutcome) -> dict[str, Any]:
    greeting = rules.greeting(view)
    return {
        "greeting": greeting,
        "sentiment_analysis": judgement.sentiment_analysis(view, outcome),
        "empathy": judgement.empathy(view, outcome),
        "interruptions": timing.interruptions(view),
        "call_structure": judgement.call_structure(view, outcome, greeting),
        "talk_metrics": timing.talk_metrics(view),
    }


def _skipped_sections() -> tuple[dict[str, Any], dict[str, Any]]:
    quality = {
        name: make_check("not_applicable", reason=NOT_IN_LEVEL, **fields)
        for name, fields in QUALITY_EMPTY.items()
    }
    coaching = make_check(
        "not_applicable", recommendations=[], customer_effort_score=None, reason=NOT_IN_LEVEL
    )
    return quality, coaching


def _keys(view: CallView, level: Level, missing: list[str]) -> list[str]:
    if not view.segments:
        return []
    keys = list(JUDGEMENT_KEYS) if level == "full" else []
    return [*keys, DISCLOSURE_KEY] if missing else keys


async def score(
    transcript: Transcript,
    *,
    rubric: Rubric | None = None,
    llm: LLMClient | None = None,
    call_direction: str | None = None,
    level: Level = "full",
    llm_attempts: int | None = None,
) -> ScoringResult:
    """Score ``transcript`` (default rubric when None). ``llm_attempts`` overrides the rubric's number
        of tries for an invalid LLM answer. The transcript is redacted first (a no-op when it already is), so
    neither the checks nor the LLM ever see a card number. Raises InferenceError when the LLM backend fails transiently."""
    if level not in ("compliance", "full"):
        raise ValueError(f"unknown level {level!r}")
    rubric = rubric or load_rubric()
    view = build_view(redact_transcript(transcript), rubric, call_direction)
    compliance = compliance_section(view)
    disclosures = compliance["mandatory_disclosures"]
    missing = list(disclosures["missing_disclosures"] or disclosures["unchecked_disclosures"])
    keys = _keys(view, level, missing)
    outcome = await ask_llm(view, llm, keys, missing, attempts=llm_attempts)
    compliance["mandatory_disclosures"] = judgement.apply_paraphrases(
        view, compliance["mandatory_disclosures"], outcome
    )
    llm_summary = outcome.part("summary")
    if level == "full":
        quality = quality_section(view, outcome)
        coaching = judgement.coaching(view, outcome, {"compliance": compliance, "quality": quality})
    else:
        quality, coaching = _skipped_sections()
    summary = (
        judgement.scrub_numbers(llm_summary.strip())
        if isinstance(llm_summary, str) and llm_summary.strip()
        else rule_summary(view, compliance, quality if level == "full" else None)
    )
    results = {
        "rubric": rubric.ref,
        "compliance": with_verdicts(compliance),  # pass/fail per requirement, once every check is final
        "quality": quality,
        "coaching": coaching,
        "summary": summary,
        "evaluation": outcome.evaluation(),
    }
    return ScoringResult(
        results=results,
        level=level,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        prompt_version=outcome.prompt_version,
        llm_model=outcome.model,
        llm_status=outcome.status,
        llm_degraded=bool(keys) and outcome.status in ("degraded", "not_configured"),
        llm_attempts=outcome.attempts,
        llm_error=outcome.error,
        summary_source="llm" if isinstance(llm_summary, str) and llm_summary.strip() else "rule",
        roles_inferred=view.roles_inferred,
    )
