"""Pass or fail per compliance requirement (issue 15): the one rule the calls list's ``failed_check``
filter, the agents' pass rates and the console's chips all read, written into each compliance check
as ``verdict`` when the call is scored.

A requirement that does not apply (``status: not_applicable``) has no verdict to count. Otherwise it
passes when: the agent identified themselves in time (1); every required disclosure was read (2); the
purpose was declared in time (3); no prohibited phrase was used (4); no sensitive data was asked for
or shared (5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

Verdict = Literal["pass", "fail", "not_applicable"]

_PASSES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "identity_verification": lambda c: c.get("verified") is True and not c.get("flagged"),
    "mandatory_disclosures": lambda c: c.get("read") is True and not c.get("missing_disclosures"),
    "purpose_declaration": lambda c: c.get("disclosed") is True and not c.get("flagged"),
    "prohibited_phrases": lambda c: c.get("used") is False,
    "sensitive_data": lambda c: c.get("shared") is False,
}
REQUIREMENTS: tuple[str, ...] = tuple(_PASSES)


def verdict(requirement: str, check: Mapping[str, Any]) -> Verdict:
    if check.get("status") != "evaluated":
        return "not_applicable"
    return "pass" if _PASSES[requirement](check) else "fail"


def with_verdicts(compliance: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The compliance section, each requirement's check with its ``verdict``."""
    return {name: {**check, "verdict": verdict(name, check)} for name, check in compliance.items()}


def verdicts(results: Mapping[str, Any] | None) -> dict[str, Verdict]:
    """Each requirement's verdict in stored ``results`` (computed for results scored before verdicts)."""
    compliance = (results or {}).get("compliance") or {}
    return {
        name: compliance[name].get("verdict") or verdict(name, compliance[name])
        for name in REQUIREMENTS
        if isinstance(compliance.get(name), Mapping)
    }


def failed_checks(results: Mapping[str, Any] | None) -> str:
    """The failed requirements as ``,a,b,`` (what ``analyses.failed_checks`` stores: a LIKE
    ``%,a,%`` finds them on PostgreSQL and SQLite alike); empty when none failed."""
    failed = [name for name, v in verdicts(results).items() if v == "fail"]
    return f",{','.join(failed)}," if failed else ""
