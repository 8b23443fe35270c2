"""Optional PII redaction (issue 13, ``redact_pii``): hand-written recognisers over the words of a
word-timed transcript, so that each hit maps back to word times (``callcov.scoring.redaction``
applies them like the card numbers of ``callcov.scoring.pci``). Policies, as a submission names them:

- ``person_name``: the words after "my name is", "this is", "I'm", "speaking with", "Mr/Mrs/Ms/Dr"
  (capitalised as ASR writes names; after "my name is" and "speaking with" also a lower-case word
  that is no common word), never an organisation ("this is Acme Bank"); then every other
  capitalised occurrence of those name words in the call ("Hi John").
- ``email_address``: written (``john.smith@example.com``) or spoken ("john dot smith at gmail dot
  com"): a local part, "at", and a domain ending in a known top-level domain.
- ``location``: a street address: a house number, one to four name words and a street word
  (street, avenue, road, lane, drive, boulevard, court, ...), with an apartment or suite after it.
- ``phone_number`` and ``date_of_birth``: ``callcov.scoring.pii_numbers``.
- ``banking_information``: bank account and routing numbers, which are always redacted; accepted
  as a policy, it changes nothing.

Presidio (``presidio-analyzer``) was not used: its NLP engine needs a spaCy language model that is
only published as unofficial re-uploads, nothing may download weights at run time, and it works on
plain text, so its hits would not map back to word times."""

from __future__ import annotations

import re
from collections.abc import Iterable

from callcov.scoring.pii_numbers import find_dates_of_birth, find_phone_numbers
from callcov.scoring.spans import RedactSpan, is_marker, one_segment
from callcov.scoring.text import SegmentText, norm_pieces

POLICIES = (
    "person_name",
    "phone_number",
    "email_address",
    "location",
    "date_of_birth",
    "banking_information",
)
_EDGE = ",.;:!?\"'()[]{}"
_CLOSES = ",.;:!?"

# Words that are never part of a name, whatever their case.
COMMON = frozenset(
    """a an the and or but so to of in on at for from with by about as is am are was were be been it its
    this that these those there here i im me my you your youre he she we they them our us not no yes yeah
    ok okay sorry just now calling speaking talking please thanks thank hi hello hey good great fine well
    sure right really very also still glad happy trying looking wondering going afraid actually who what
    how why where when can could would should will do does did have has had one calling regarding back
    out up down over all any some every today tomorrow morning afternoon evening monday tuesday wednesday
    thursday friday saturday sunday january february march april may june july august september october
    november december customer service support manager agent representative team department sir madam
    maam miss mister mr mrs ms dr doctor speaker name names someone somebody anyone anybody everyone
    nobody him her his their people person wife husband son daughter mother father mom dad friend brother
    sister colleague boss spelled spelt important urgent""".split()
)
ORGANISATION = frozenset(
    """bank banking inc corp corporation company co group insurance services service support team
    department store center centre llc ltd limited financial credit union solutions systems
    technologies healthcare hospital clinic university college""".split()
)
STRONG = (("my", "name", "is"), ("my", "names"), ("name", "is"), ("speaking", "with"), ("speaking", "to"))
WEAK = (("this", "is"), ("im",), ("i", "am"), ("talking", "to"), ("talking", "with"))
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mister", "dr", "doctor"})
MAX_NAME_WORDS = 3

TLDS = frozenset("com net org edu gov io co uk us ca au de fr info biz me ai app dev uk ie nz in".split())
_WRITTEN_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9\-_]*$")
CONNECTORS = frozenset({"dot", "period", "underscore", "dash", "hyphen"})

STREET_WORDS = frozenset(
    """street st avenue ave road rd lane ln drive boulevard blvd court ct way place terrace circle
    parkway highway hwy square crescent trail""".split()
)
UNIT_WORDS = frozenset({"apartment", "apt", "unit", "suite", "flat"})
NUMBER_WORDS = frozenset(
    """zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
    thousand double triple""".split()
)


def clean(text: str) -> str:
    return text.strip().strip(_EDGE)


def find_pii(texts: list[SegmentText], policies: Iterable[str]) -> list[RedactSpan]:
    """The spans of the requested PII types in the call (``texts`` in time order), in priority
    order: dates of birth, emails, phone numbers, addresses, names (an overlap keeps the first)."""
    wanted = set(policies)
    finders = (
        ("date_of_birth", find_dates_of_birth),
        ("email_address", find_emails),
        ("phone_number", find_phone_numbers),
        ("location", find_locations),
        ("person_name", find_names),
    )
    return [span for kind, finder in finders if kind in wanted for span in finder(texts)]


# -- names -------------------------------------------------------------------------------------


def _capitalised(word: str) -> bool:
    w = clean(word)
    return len(w) >= 2 and w[0].isupper() and w[1:2].isalpha() and not is_marker(word)


def _name_word(word: str, *, lower_ok: bool) -> bool:
    pieces = norm_pieces(clean(word))
    if len(pieces) != 1 or not pieces[0].isalpha() or is_marker(word):
        return False
    if pieces[0] in COMMON or pieces[0] in ORGANISATION:
        return False
    return _capitalised(word) or (lower_ok and len(pieces[0]) >= 2)


def _trigger_ends(st: SegmentText) -> list[tuple[int, bool]]:
    """(index of the word after a trigger, strong) for each name trigger of the segment."""
    tokens = st.tokens
    out: list[tuple[int, bool]] = []
    for i in range(len(tokens)):
        for phrases, strong in ((STRONG, True), (WEAK, False)):
            for phrase in phrases:
                if tuple(tokens[i : i + len(phrase)]) == phrase:
                    out.append((st.token_words[i + len(phrase) - 1] + 1, strong))
        if tokens[i] in TITLES:
            out.append((st.token_words[i] + 1, True))
    return out


def _name_after(st: SegmentText, start: int, strong: bool) -> tuple[int, int] | None:
    words = st.words
    end = start
    while end < len(words) and end - start < MAX_NAME_WORDS:
        lower_ok = strong and end - start < 2 and (end == start or not _capitalised(words[start].text))
        if not _name_word(words[end].text, lower_ok=lower_ok):
            break
        end += 1
        if words[end - 1].text.rstrip()[-1:] in _CLOSES:
            break
    if end == start:
        return None
    following = norm_pieces(clean(words[end].text)) if end < len(words) else []
    if following and following[0] in ORGANISATION:  # "this is Acme Bank"
        return None
    return start, end - 1


def _name_key(word: str) -> str:
    w = clean(word)
    return (w[:-2] if w.lower().endswith("'s") else w).lower()


def find_names(texts: list[SegmentText]) -> list[RedactSpan]:
    """Names introduced by a trigger, then their other capitalised occurrences."""
    spans: list[RedactSpan] = []
    names: set[str] = set()
    for st in texts:
        for start, strong in _trigger_ends(st):
            found = _name_after(st, start, strong)
            if found is not None:
                spans.append(one_segment("person_name", st.index, *found))
                names.update(_name_key(w.text) for w in st.words[found[0] : found[1] + 1])
    taken = {(s.ranges[0][0], w) for s in spans for w in range(s.ranges[0][1], s.ranges[0][2] + 1)}
    for st in texts:
        run: list[int] = []
        for wi, word in enumerate([*st.words, None]):
            if word is not None and (st.index, wi) not in taken and _capitalised(word.text):
                if _name_key(word.text) in names:
                    run.append(wi)
                    continue
            if run:
                spans.append(one_segment("person_name", st.index, run[0], run[-1]))
                run = []
    return spans


# -- email addresses ---------------------------------------------------------------------------


def _domain_end(words: list[str], i: int) -> int | None:
    """The last word of a domain starting at ``i`` ("gmail dot com", "gmail.com"), or None."""
    if i >= len(words):
        return None
    if "." in words[i] and words[i].rsplit(".", 1)[1] in TLDS and _LABEL.match(words[i].replace(".", "")):
        return i
    end, dots = i, 0
    if not _LABEL.match(words[i]):
        return None
    while end + 2 < len(words) and words[end + 1] in {"dot", "period"} and _LABEL.match(words[end + 2]):
        end, dots = end + 2, dots + 1
    return end if dots and words[end] in TLDS else None


def _local_start(words: list[str], at: int) -> int | None:
    """The first word of the local part ending right before ``at`` ("john dot smith")."""
    i = at - 1
    if i < 0 or not _LABEL.match(words[i].replace(".", "")) or words[i] in COMMON:
        return None
    while i >= 2 and words[i - 1] in CONNECTORS and _LABEL.match(words[i - 2]):
        i -= 2
    extra = 0
    while i >= 1 and extra < 2 and _LABEL.match(words[i - 1]) and words[i - 1] not in COMMON:
        if words[i - 1] in {"email", "mail", "address"} | CONNECTORS:
            break
        i, extra = i - 1, extra + 1
    return i


def find_emails(texts: list[SegmentText]) -> list[RedactSpan]:
    spans: list[RedactSpan] = []
    for st in texts:
        words = [clean(w.text).lower() for w in st.words]
        covered = -1
        for i, word in enumerate(words):
            if i <= covered or is_marker(st.words[i].text):
                continue
            if _WRITTEN_EMAIL.match(word):
                spans.append(one_segment("email_address", st.index, i, i))
                covered = i
            elif word in {"at", "@"}:
                end, start = _domain_end(words, i + 1), _local_start(words, i)
                if end is not None and start is not None and start > covered:
                    spans.append(one_segment("email_address", st.index, start, end))
                    covered = end
    return spans


# -- street addresses --------------------------------------------------------------------------


def _is_number(token: str) -> bool:
    return token in NUMBER_WORDS or bool(re.fullmatch(r"\d+[a-z]?", token))


def find_locations(texts: list[SegmentText]) -> list[RedactSpan]:
    """A house number, 1-4 name words and a street word, and a unit after it."""
    spans: list[RedactSpan] = []
    for st in texts:
        tokens, covered = st.tokens, -1
        for j, token in enumerate(tokens):
            if token not in STREET_WORDS or j <= covered:
                continue
            k = j - 1
            while k >= 0 and j - k <= 4 and not _is_number(tokens[k]) and tokens[k] not in COMMON:
                k -= 1
            if k < 0 or k == j - 1 or not _is_number(tokens[k]) or k <= covered:
                continue
            while k > 0 and _is_number(tokens[k - 1]) and k - 1 > covered:
                k -= 1
            end = j
            if j + 2 < len(tokens) and tokens[j + 1] in UNIT_WORDS | {"number"} and _is_number(tokens[j + 2]):
                end = j + 2
                while end + 1 < len(tokens) and _is_number(tokens[end + 1]):
                    end += 1
            spans.append(one_segment("location", st.index, st.token_words[k], st.token_words[end]))
            covered = end
    return spans
