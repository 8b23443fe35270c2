"""The scoring engine: the 16-point rubric applied to a transcript, as a pure library (no Ray, no
database, no HTTP). Deterministic rules decide compliance; one schema-constrained LLM call judges
quality and coaching; every quote returned is verified against the transcript."""

from callcov.scoring.evidence import verify_evidence
from callcov.scoring.rubric import (
    PromptTemplate,
    Rubric,
    RubricInvalid,
    RubricNotFound,
    load_prompt,
    load_rubric,
)
from callcov.scoring.scorer import Level, ScoringResult, score

__all__ = [
    "Level",
    "PromptTemplate",
    "Rubric",
    "RubricInvalid",
    "RubricNotFound",
    "ScoringResult",
    "load_prompt",
    "load_rubric",
    "score",
    "verify_evidence",
]
