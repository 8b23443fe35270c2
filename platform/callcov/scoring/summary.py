"""The deterministic summary: a short paragraph built from the rule checks. Used when the LLM gave no
valid summary, and at the "compliance" level (where it covers compliance only)."""

from __future__ import annotations

from typing import Any

from callcov.scoring.view import CallView


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _identity(check: dict[str, Any], window: float) -> str | None:
    if check["status"] != "evaluated":
        return None
    if not check["verified"]:
        return "The agent did not identify themselves."
    when = f"{check['timestamp']:.1f} s"
    if check["flagged"]:
        return f"The agent identified themselves only at {when}, after the {window:g} s window."
    return f"The agent identified themselves at {when}."


def _disclosures(check: dict[str, Any]) -> str | None:
    if check["status"] != "evaluated":
        return None
    if check["missing_disclosures"]:
        return "Missing disclosures: " + ", ".join(check["missing_disclosures"]) + "."
    return "All mandatory disclosures were read (" + ", ".join(check["matched_disclosures"]) + ")."


def _purpose(check: dict[str, Any], turns: int) -> str | None:
    if check["status"] != "evaluated":
        return None
    if not check["disclosed"]:
        return "The agent did not state the purpose of the call."
    n = check["interaction_number"]
    late = f", after the first {turns} turns" if check["flagged"] else ""
    return f"The purpose of the call was stated in agent turn {n}{late}."


def _prohibited(check: dict[str, Any]) -> str | None:
    if check["status"] != "evaluated":
        return None
    count = len(check["instances"])
    if not count:
        return "No prohibited phrases were used."
    kinds = sorted({i["category"] for i in check["instances"]})
    return f"{count} prohibited phrase(s) used ({', '.join(kinds)})."


def _sensitive(check: dict[str, Any]) -> str | None:
    if check["status"] != "evaluated":
        return None
    if not check["shared"]:
        return "No card numbers, SSNs or account numbers were spoken."
    kinds = sorted({i["type"].replace("_", " ") for i in check["instances"]})
    return f"Sensitive data was spoken: {', '.join(kinds)}."


def _quality(quality: dict[str, Any]) -> list[str]:
    out: list[str] = []
    talk = quality.get("talk_metrics", {})
    if talk.get("status") == "evaluated" and talk.get("agent_talk_ratio") is not None:
        out.append(
            f"The agent spoke {talk['agent_talk_ratio']:.0%} of the time; the longest silence lasted "
            f"{talk['longest_silence_s']:.1f} s."
        )
    inter = quality.get("interruptions", {})
    if inter.get("status") == "evaluated":
        out.append(
            f"Interruptions: {inter['agent_interruptions']} by the agent, "
            f"{inter['customer_interruptions']} by the customer."
        )
    return out


def rule_summary(view: CallView, compliance: dict[str, Any], quality: dict[str, Any] | None) -> str:
    """One paragraph from the rule results (``quality`` None: compliance only)."""
    if not view.segments:
        return f"No speech was found in the recording ({_duration(view.duration)})."
    rubric = view.rubric
    opening = f"{view.direction.capitalize()} call" if view.direction else "A call"
    parts = [
        f"{opening} of {_duration(view.duration)}.",
        f"Phrase checks were not applied: {reason}." if (reason := view.language_reason()) else None,
        _identity(compliance["identity_verification"], rubric.identity.window_s),
        _disclosures(compliance["mandatory_disclosures"]),
        _purpose(compliance["purpose_declaration"], rubric.purpose.max_agent_turns),
        _prohibited(compliance["prohibited_phrases"]),
        _sensitive(compliance["sensitive_data"]),
        *(_quality(quality) if quality else []),
    ]
    return " ".join(p for p in parts if p)
