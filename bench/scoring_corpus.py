"""Synthetic calls with known facts for every rule check of the scorer (``bench/scoring_eval.py``).

``corpus(n, seed)`` is deterministic: call ``i`` draws its choices from ``Random(f"{seed}:{i}")``, so a
call does not change when ``n`` does. Each ``CallSpec`` holds the script (role, text turns), how to
speak it (voices, speed, layout, overlapping turns) and ``facts``: for each check, whether the flag the
scorer should raise is raised (True), not raised (False), or the check does not apply (absent). The
identity timing is known only once the call is rendered: ``identity_turn`` names the turn that opens
with the agent's name, and ``facts_after_render`` adds ``identity_flagged`` from its start time.

What varies: direction (inbound, outbound, outbound debt collection); greeting; identity (within
15 s, late, absent); the call-recording notice (verbatim, paraphrased, absent); the mini-Miranda on
debt calls; the purpose on outbound calls; prohibited phrases of each category and innocent
look-alikes; card numbers (Luhn-valid, spoken as digit words: plain, grouped, with "double" and
"oh"), with the expiry date and CVV after them, SSNs, bank account numbers, and look-alikes that are
not sensitive (order and phone numbers, amounts, dates); the closing; an agent interrupting the
customer; and, for the LLM checks, empathy, resolution and the customer's final sentiment.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DIGITS = "zero one two three four five six seven eight nine".split()
AGENT_VOICES = ["en-us+m1", "en-us+m3", "en-us+m7", "en-us+f2"]
CUSTOMER_VOICES = {"m": ["en-us+f1", "en-us+f3", "en-us+f4"], "f": ["en-us+m2", "en-us+m4", "en-us+m6"]}
SPEEDS = [140, 150, 160, 170, 180]
NAMES = ["Sarah", "John", "Maria", "David", "Emily", "Peter", "Laura", "Kevin"]
COMPANIES = ["Acme Bank", "Northwind Energy", "Contoso Telecom", "Blue River Insurance"]
IDENTITY_WINDOW_S = 15.0
SENSITIVE_KINDS = ("credit_card", "ssn", "account_number", "cvv", "expiry")
PROHIBITED = {
    "dismissive": ["Calm down, please.", "That is not my problem.", "There is nothing I can do."],
    "coercive": ["You have to pay the full amount today.", "You must sign the new form."],
    "misleading": ["This plan is guaranteed to save you money.", "It is completely risk free."],
    "profanity": ["Damn it, the system is slow again.", "This crap system keeps freezing."],
}
INNOCENT = [
    "That is not a problem at all.",
    "You have two options here.",
    "You do not have to decide today.",
    "Things have calmed down since the update.",
    "There is no fee for that change.",
    "Please scrap the old paper form.",
]
RECORDING = [
    "This call may be recorded for quality and training purposes.",
    "Please note that this call is being recorded.",
    "Calls are recorded for quality.",
]
RECORDING_PARAPHRASED = [
    "Just so you know, we keep a recording of our conversation today.",
    "We keep audio of these conversations to train our staff.",
]
MINI_MIRANDA = (
    "This is an attempt to collect a debt, and any information obtained will be used for that purpose."
)
MONTHS = "January February March April May June July August September October November".split()
ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()


@dataclass(frozen=True)
class CallSpec:
    id: str
    direction: str  # inbound | outbound
    debt: bool
    stereo: bool
    voices: dict[str, str]
    words_per_minute: int
    turns: tuple[tuple[str, str], ...]
    overlaps: dict[int, float]
    facts: dict[str, bool]
    identity_turn: int | None  # the turn that opens with the agent's name
    variants: dict[str, str] = field(default_factory=dict)  # how each fact was produced
    llm_labels: dict[str, Any] = field(default_factory=dict)

    def facts_after_render(self, turn_starts: Sequence[float]) -> dict[str, bool]:
        """``facts`` plus ``identity_flagged``: no name, or a name stated after the 15 s window."""
        late = self.identity_turn is None or turn_starts[self.identity_turn] > IDENTITY_WINDOW_S
        return {**self.facts, "identity_flagged": late}

    def script(self) -> str:
        return " ".join(text for _, text in self.turns)


def luhn_number(rng: random.Random, length: int = 16, *, zeros_and_doubles: bool = False) -> str:
    """A Luhn-valid card number starting with 4 (or 5); with ``zeros_and_doubles`` it holds a zero and
    a doubled digit inside a group, so it is spoken with "oh" and "double"."""
    body = [rng.choice("45")] + [str(rng.randrange(10)) for _ in range(length - 2)]
    if zeros_and_doubles:
        body[5] = "0"
        body[9] = body[10] = str(rng.randrange(1, 10))
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return "".join(body) + str((10 - total % 10) % 10)


def spoken_digits(digits: str, groups: Sequence[int] = (), *, style: str = "plain") -> str:
    """Digits as words: ``plain`` one word each, ``grouped`` with commas between ``groups``,
    ``double`` with "oh" for zero and "double" for a repeated digit inside a group."""
    chunks, at = [], 0
    for size in groups or (len(digits),):
        chunks.append(digits[at : at + size])
        at += size
    if at < len(digits):
        chunks.append(digits[at:])
    spoken = []
    for chunk in chunks:
        words, i = [], 0
        while i < len(chunk):
            if style == "double" and i + 1 < len(chunk) and chunk[i] == chunk[i + 1]:
                words.append(f"double {_digit_word(chunk[i], style)}")
                i += 2
                continue
            words.append(_digit_word(chunk[i], style))
            i += 1
        spoken.append(" ".join(words))
    return (", " if style != "plain" else " ").join(spoken)


def _digit_word(digit: str, style: str) -> str:
    return "oh" if style == "double" and digit == "0" else DIGITS[int(digit)]


def _number_words(n: int) -> str:
    """0-99 in words (for dates and amounts)."""
    teens = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return teens[n - 10]
    return tens[n // 10 - 2] + ("" if n % 10 == 0 else " " + DIGITS[n % 10])


class _Builder:
    """Collects turns and facts for one call."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.turns: list[tuple[str, str]] = []
        self.facts: dict[str, bool] = {}
        self.variants: dict[str, str] = {}
        self.overlaps: dict[int, float] = {}

    def say(self, role: str, *parts: str) -> int:
        self.turns.append((role, " ".join(p for p in parts if p)))
        return len(self.turns) - 1

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


def _opening(b: _Builder, direction: str, debt: bool, name: str, company: str) -> str:
    """The agent's first turn; returns the identity variant (within, late, absent)."""
    greet = b.chance(0.8)
    b.facts["greeting_missing"] = not greet
    b.facts["mini_miranda_missing"] = False  # required on outbound debt calls only
    identity = b.rng.choices(["within", "late", "absent"], [0.6, 0.2, 0.2])[0]
    notice = b.rng.choices(["verbatim", "paraphrased", "absent"], [0.6, 0.2, 0.2])[0]
    b.variants.update(identity=identity, recording_notice=notice)
    b.facts["call_recording_notice_missing"] = notice == "absent"
    said_notice = {
        "verbatim": b.rng.choice(RECORDING),
        "paraphrased": b.rng.choice(RECORDING_PARAPHRASED),
        "absent": "",
    }[notice]
    if direction == "inbound":
        hello = (
            f"Good morning, thank you for calling {company}." if greet else f"{company}, customer service."
        )
        me = f"My name is {name}." if identity == "within" else ""
        b.say("agent", hello, me, said_notice, "How can I help you today?")
        return identity
    hello = "Hello," if greet else ""
    me = (
        f"this is {name} calling from {company}." if identity == "within" else f"I am calling from {company}."
    )
    b.say("agent", hello, me if greet else me[0].upper() + me[1:], said_notice)
    b.say("customer", "Yes, speaking. Who is this?")
    purpose = b.chance(0.75)
    b.facts["purpose_missing"] = not purpose
    topic = "your past due balance" if debt else "your recent order"
    miranda = ""
    if debt:
        given = b.chance(0.55)
        b.facts["mini_miranda_missing"] = not given
        miranda = MINI_MIRANDA if given else ""
    reason = f"I am calling about {topic}." if purpose else "Can you confirm your full name, please?"
    b.say("agent", reason, miranda)
    if debt and not purpose:  # the debt keyword the mini-Miranda rule needs, said later
        b.say("customer", "It is Alex Morgan. Is this about the overdue balance?")
    return identity


def _sensitive(b: _Builder) -> None:
    """Sensitive data and look-alikes, in turn pairs of their own."""
    rng = b.rng
    for kind in SENSITIVE_KINDS:
        b.facts[f"sensitive_{kind}"] = False
    if b.chance(0.5):
        style = rng.choice(["plain", "grouped", "double"])
        number = luhn_number(rng, zeros_and_doubles=style == "double")
        b.variants["card"] = style
        b.say("agent", "Of course. Please read me the card number.")
        b.say("customer", f"It is {spoken_digits(number, (4, 4, 4, 4), style=style)}.")
        b.facts["sensitive_credit_card"] = True
        if b.chance(0.6):
            month, year, cvv = rng.randrange(1, 13), rng.randrange(26, 32), rng.randrange(100, 1000)
            b.say("agent", "Thank you. And the expiry date and the security code?")
            expiry = f"{_number_words(month)} {_number_words(year)}"
            b.say("customer", f"{expiry.capitalize()}, and the code is {spoken_digits(str(cvv))}.")
            b.facts.update(sensitive_expiry=True, sensitive_cvv=True)
    if b.chance(0.35):
        ssn = f"{rng.randrange(100, 900)}{rng.randrange(10, 100)}{rng.randrange(1000, 10000)}"
        b.say("agent", "Can you confirm your social security number?")
        b.say("customer", f"Sure, it is {spoken_digits(ssn, (3, 2, 4), style='grouped')}.")
        b.facts["sensitive_ssn"] = True
    if b.chance(0.35):
        account = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(8, 13)))
        b.say("customer", f"My bank account number is {spoken_digits(account)}.")
        b.say("agent", "Thank you, I have found it.")
        b.facts["sensitive_account_number"] = True
    lookalikes = rng.sample(["order", "phone", "amount", "date"], k=rng.randrange(1, 4))
    b.variants["lookalikes"] = ",".join(sorted(lookalikes))
    for kind in lookalikes:
        if kind == "order":
            order = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(5, 9)))
            b.say("agent", f"Your order number is {spoken_digits(order)}.")
        elif kind == "phone":
            phone = "555" + "".join(str(rng.randrange(10)) for _ in range(7))
            b.say("customer", f"You can reach me at {spoken_digits(phone, (3, 3, 4), style='grouped')}.")
        elif kind == "amount":
            b.say(
                "agent",
                f"The payment of {DIGITS[rng.randrange(2, 10)]} thousand four hundred dollars is noted.",
            )
        else:
            day, month = rng.randrange(12), rng.choice(MONTHS)
            b.say("customer", f"It happened on {month} {ORDINALS[day]}, twenty twenty five.")


def _prohibited(b: _Builder) -> None:
    for category, phrases in PROHIBITED.items():
        used = b.chance(0.2)
        b.facts[f"prohibited_{category}"] = used
        if used:
            b.say("agent", b.rng.choice(phrases))
            b.say("customer", "Excuse me?")
    if b.chance(0.5):
        b.variants["innocent"] = innocent = b.rng.choice(INNOCENT)
        b.say("agent", innocent)
        b.say("customer", "Okay.")


def _story(b: _Builder) -> None:
    """Empathy, resolution and the customer's mood (the LLM labels), and maybe an interruption."""
    empathy, resolved = b.chance(0.5), b.chance(0.5)
    b.say(
        "customer",
        "I was charged twice last month and nobody has fixed it, I have called three times already.",
    )
    interrupted = b.chance(0.35)
    b.facts["interruption"] = interrupted
    if interrupted:
        b.overlaps[len(b.turns)] = 1.2
    care = "I am so sorry to hear that, I understand how frustrating this must be." if empathy else "Okay."
    b.say("agent", care, "Let me check the charges on the account.")
    if resolved:
        b.say("agent", "I have reversed the second charge, you will see the refund within five days.")
        end = "Great, thank you so much, that is a relief."
    else:
        b.say("agent", "I cannot change that here, you will need to send a letter to the billing office.")
        end = "This is really disappointing, I am not happy at all."
    b.say("customer", end)
    b.llm_labels = {
        "empathy": empathy,
        "resolution": resolved,
        "customer_sentiment_end": "positive" if resolved else "negative",
    }


def _closing(b: _Builder) -> None:
    closing = b.chance(0.75)
    b.facts["closing_missing"] = not closing
    if closing:
        b.say("agent", "Is there anything else I can help you with? Have a great day, goodbye.")
    else:
        b.say("agent", "Alright, the case is noted on the file.")


def make_call(seed: int, index: int) -> CallSpec:
    rng = random.Random(f"{seed}:{index}")
    direction = rng.choice(["inbound", "outbound", "outbound"])
    debt = direction == "outbound" and rng.random() < 0.5
    b = _Builder(rng)
    b.llm_labels = {}
    name, company = rng.choice(NAMES), rng.choice(COMPANIES)
    identity = _opening(b, direction, debt, name, company)
    b.say("customer", "Hi, I need some help with my account.")
    identity_turn = 0 if identity == "within" else None
    _sensitive(b)
    if identity == "late":
        b.say("customer", "Sorry, who am I speaking with?")
        identity_turn = b.say("agent", f"My name is {name}, from {company}.")
    _prohibited(b)
    _story(b)
    _closing(b)
    b.say("customer", "Thanks, bye.")
    agent_voice = rng.choice(AGENT_VOICES)
    gender = "f" if agent_voice.endswith(("f2",)) else "m"
    return CallSpec(
        id=f"call{index:03d}",
        direction=direction,
        debt=debt,
        stereo=index % 2 == 0,
        voices={"agent": agent_voice, "customer": rng.choice(CUSTOMER_VOICES[gender])},
        words_per_minute=rng.choice(SPEEDS),
        turns=tuple(b.turns),
        overlaps=dict(b.overlaps),
        facts=dict(b.facts),
        identity_turn=identity_turn,
        variants=dict(b.variants),
        llm_labels=dict(b.llm_labels),
    )


def corpus(n: int, seed: int = 13) -> list[CallSpec]:
    return [make_call(seed, i) for i in range(n)]
