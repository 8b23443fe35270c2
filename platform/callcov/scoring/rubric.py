"""Versioned scoring rubrics (``models/rubrics/<id>/v<N>.yaml``) and prompt templates
(``models/prompts/<name>/v<N>.txt``, package data in a wheel), loaded and validated with pydantic. Nothing is read at import time;
loaded files are cached per (id, version, directory)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from string import Template
from typing import Any, Literal, get_args

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callcov.inference.ports import ChatMessage
from callcov.kit.resources import resource_dir

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^v?([0-9]{1,6})$")

Priority = Literal["high", "medium", "low"]
SensitiveType = Literal["credit_card", "credit_card_cvv", "credit_card_expiration", "ssn", "account_number"]
PhraseSection = Literal[
    "identity", "disclosures", "purpose", "prohibited_phrases", "greeting", "closing", "empathy"
]
# ISO 639-1: the codes a rubric may name in ``languages`` (Whisper reports these for its languages).
ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de "
    "dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id "
    "ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu "
    "lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu "
    "rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr "
    "ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)


class RubricNotFound(LookupError):
    """No rubric (or prompt) with that id and version."""


class RubricInvalid(ValueError):
    """The rubric or prompt file exists but does not validate."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rubric pattern, wrapped in word boundaries, for normalised text."""
    return re.compile(rf"\b(?:{pattern})\b")


def _check_patterns(patterns: list[str]) -> list[str]:
    for p in patterns:
        try:
            compile_pattern(p)
        except re.error as exc:
            raise ValueError(f"invalid pattern {p!r}: {exc}") from exc
    return patterns


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Model):
    n: int = Field(ge=1)
    id: str
    path: str
    source: Literal["rule", "llm", "rule+llm"]

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]


class ConfidenceRules(_Model):
    pattern_found: float = Field(0.95, ge=0, le=1)
    pattern_absent: float = Field(0.8, ge=0, le=1)
    measured: float = Field(0.95, ge=0, le=1)


class PatternList(_Model):
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class RolesRules(_Model):
    inferred_factor: float = Field(0.8, ge=0, le=1)
    agent_cues: list[str] = Field(default_factory=list)

    @field_validator("agent_cues")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class IdentityRules(PatternList):
    window_s: float = Field(15, gt=0)
    name_stopwords: list[str] = Field(default_factory=list)


class PurposeRules(PatternList):
    max_agent_turns: int = Field(4, ge=1)
    applies_to_directions: list[Literal["inbound", "outbound"]] = ["outbound"]
    inbound_cues: list[str] = Field(default_factory=list)

    @field_validator("inbound_cues")
    @classmethod
    def _cues_compile(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class AppliesWhen(_Model):
    directions: list[Literal["inbound", "outbound"]] | None = None
    keywords_any: list[str] | None = None


class Disclosure(PatternList):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    applies_when: AppliesWhen | None = None


class ProhibitedPhrase(_Model):
    pattern: str
    category: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _check_patterns([value])[0]


class SensitiveRules(_Model):
    """Which redacted types the check reports. The detection is the platform's (``scoring.pci``); the
    other fields were the rules of v1 and v2, kept so that those files still load, and read by nothing."""

    types: list[SensitiveType] = ["credit_card", "ssn", "account_number"]
    card_min_digits: int = Field(13, ge=12)
    card_max_digits: int = Field(19, le=19)
    account_min_digits: int = Field(6, ge=4)
    account_max_digits: int = Field(17, le=30)
    context_words: int = Field(10, ge=1)
    ssn_keywords: list[str] = ["social security", "ssn"]
    account_keywords: list[str] = ["account"]
    # A run of at least this many digits (up to card_max_digits) with a card keyword nearby is a card
    # number even when its checksum fails: ASR tends to drop one of four repeated digit groups.
    # None: Luhn-valid numbers only (rubric v1).
    card_partial_min_digits: int | None = Field(None, ge=8)
    card_keywords: list[str] = []


class GreetingRules(PatternList):
    window_s: float = Field(20, gt=0)


class ClosingRules(PatternList):
    last_agent_turns: int = Field(2, ge=1)


class InterruptionRules(_Model):
    tolerance_s: float = Field(0.3, ge=0)
    flag_agent_count: int = Field(3, ge=1)
    backchannels: list[str] = Field(default_factory=list)


class TalkRules(_Model):
    agent_ratio_min: float = Field(0.25, ge=0, le=1)
    agent_ratio_max: float = Field(0.75, ge=0, le=1)
    long_silence_s: float = Field(10, gt=0)
    min_silence_gap_s: float = Field(1.0, ge=0)


class Recommendation(_Model):
    priority: Priority
    category: str
    recommendation: str


class CoachingRules(_Model):
    max_recommendations: int = Field(6, ge=1)
    rule_recommendations: dict[str, Recommendation] = Field(default_factory=dict)


class PhraseMatching(_Model):
    """Tolerance for words misheard by the recogniser (``scoring/fuzzy.py``); absent: exact only."""

    max_word_errors: int = Field(1, ge=0, le=3)
    min_words: int = Field(3, ge=2)  # a match of fewer words must be exact; one error per min_words
    confidence_factor: float = Field(0.85, ge=0, le=1)  # applied to a result resting on a tolerant match
    sections: list[PhraseSection] = list(get_args(PhraseSection))


class PromptRef(_Model):
    name: str
    version: str


class LLMChunking(_Model):
    """A transcript longer than ``max_transcript_chars`` is judged in chunks (``scoring/chunks.py``)."""

    max_chunks: int = Field(4, ge=2, le=12)
    overlap_turns: int = Field(2, ge=0, le=10)
    summary_prompt: PromptRef | None = None  # one more call to merge the chunk summaries; None: joined


class LLMRules(_Model):
    prompt: PromptRef
    attempts: int = Field(2, ge=1, le=5)
    max_tokens: int = Field(1200, ge=64)
    confidence: float = Field(0.7, ge=0, le=1)
    max_transcript_chars: int = Field(12000, ge=500)
    paraphrase_min_words: int = Field(4, ge=1)
    chunking: LLMChunking | None = None  # None: a long transcript keeps its beginning and end only
    tasks: dict[str, str]
    json_schema: dict[str, Any] = Field(alias="schema")

    @model_validator(mode="after")
    def _schema_ok(self) -> LLMRules:
        try:
            Draft202012Validator.check_schema(self.json_schema)
        except SchemaError as exc:
            raise ValueError(f"llm.schema is not a valid JSON schema: {exc.message}") from exc
        props = self.json_schema.get("properties", {})
        if set(props) != set(self.tasks):
            raise ValueError("llm.tasks must have one line per top-level key of llm.schema")
        return self


class Rubric(_Model):
    id: str
    version: str
    name: str
    description: str = ""
    languages: list[str] | None = Field(None, min_length=1)  # ISO 639-1; None: phrase checks in any language
    points: list[Point]
    confidence: ConfidenceRules = ConfidenceRules()
    roles: RolesRules = RolesRules()
    identity: IdentityRules
    purpose: PurposeRules
    disclosures: list[Disclosure]
    prohibited_phrases: list[ProhibitedPhrase]
    sensitive_data: SensitiveRules = SensitiveRules()
    greeting: GreetingRules
    closing: ClosingRules
    empathy: PatternList
    interruptions: InterruptionRules = InterruptionRules()
    talk_metrics: TalkRules = TalkRules()
    coaching: CoachingRules = CoachingRules()
    phrase_matching: PhraseMatching | None = None
    llm: LLMRules

    @field_validator("languages")
    @classmethod
    def _iso_codes(cls, value: list[str] | None) -> list[str] | None:
        for code in value or []:
            if code not in ISO_639_1:
                raise ValueError(f"languages: {code!r} is not a lower-case ISO 639-1 code")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [p.id for p in self.points]
        if len(set(ids)) != len(ids) or [p.n for p in self.points] != list(range(1, len(ids) + 1)):
            raise ValueError("points need unique ids and numbers 1..N in order")
        for p in self.points:
            if p.section not in ("compliance", "quality", "coaching", "summary"):
                raise ValueError(f"point {p.id}: unknown section in path {p.path!r}")
        d_ids = [d.id for d in self.disclosures]
        if len(set(d_ids)) != len(d_ids):
            raise ValueError("disclosure ids must be unique")
        return self

    @property
    def ref(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version}


class PromptTemplate(_Model):
    """A chat prompt: a system and a user part, each a ``string.Template`` (``$name`` placeholders)."""

    name: str
    version: str
    system: str
    user: str

    def render(self, **values: object) -> list[ChatMessage]:
        """The chat messages; a missing placeholder value raises ``KeyError``."""
        text = {k: str(v) for k, v in values.items()}
        return [
            ChatMessage(role="system", content=Template(self.system).substitute(text)),
            ChatMessage(role="user", content=Template(self.user).substitute(text)),
        ]


def _version_file(base: Path, name: str, version: str | None, suffix: str) -> tuple[Path, str]:
    """The file of ``name`` at ``version`` (the highest when None) under ``base``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RubricNotFound(f"invalid name {name!r}")
    folder = base / name
    if version is None:
        found = sorted(
            (int(m.group(1)), p)
            for p in folder.glob(f"v*{suffix}")
            if (m := _VERSION.match(p.name.removesuffix(suffix)))
        )
        if not found:
            raise RubricNotFound(f"no versions of {name!r} in {folder}")
        number, path = found[-1]
        return path, str(number)
    m = _VERSION.match(str(version))
    if not m:
        raise RubricNotFound(f"invalid version {version!r}")
    number_s = str(int(m.group(1)))
    path = folder / f"v{number_s}{suffix}"
    if not path.is_file():
        raise RubricNotFound(f"{name!r} version {number_s} not found")
    return path, number_s


def load_rubric(
    rubric_id: str | None = "default",
    version: str | int | None = None,
    *,
    directory: Path | str | None = None,
) -> Rubric:
    """Load and validate ``<directory>/<rubric_id>/v<N>.yaml`` (default: ``resource_dir("rubrics")``;
    the "default" rubric when ``rubric_id`` is None, its highest version when ``version`` is None).
    Raises RubricNotFound (unknown or malformed id/version) or RubricInvalid (the file does not validate)."""
    rubric_id = "default" if rubric_id is None else rubric_id
    base = Path(directory) if directory is not None else resource_dir("rubrics")
    path, number = _version_file(base, rubric_id, None if version is None else str(version), ".yaml")
    return _load_rubric_file(str(path.resolve()), rubric_id, number)


@functools.lru_cache(maxsize=64)
def _load_rubric_file(path: str, rubric_id: str, number: str) -> Rubric:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        rubric = Rubric.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise RubricInvalid(f"rubric {rubric_id!r} v{number}: {exc}") from exc
    if rubric.id != rubric_id or rubric.version != number:
        raise RubricInvalid(f"{path}: id/version {rubric.id!r}/{rubric.version!r} do not match the file")
    return rubric


def load_prompt(
    name: str = "scoring", version: str | int | None = None, *, directory: Path | str | None = None
) -> PromptTemplate:
    """Load ``<directory>/<name>/v<N>.txt``: a ``@@ system`` and a ``@@ user`` section."""
    base = Path(directory) if directory is not None else resource_dir("prompts")
    path, number = _version_file(base, name, None if version is None else str(version), ".txt")
    return _load_prompt_file(str(path.resolve()), name, number)


@functools.lru_cache(maxsize=64)
def _load_prompt_file(path: str, name: str, number: str) -> PromptTemplate:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        head = line.strip()
        if head.startswith("@@ "):
            current = sections.setdefault(head[3:].strip(), [])
        elif current is not None:
            current.append(line)
    if set(sections) != {"system", "user"}:
        raise RubricInvalid(f"prompt {name!r} v{number}: needs exactly '@@ system' and '@@ user' sections")
    system, user = ("\n".join(sections[k]).strip() for k in ("system", "user"))
    return PromptTemplate(name=name, version=number, system=system, user=user)
