"""The guard a semantic match must pass: two prompts whose embeddings are close may still ask opposite
things. all-MiniLM-L6-v2 puts "Is aspirin safe for children?" and "Is aspirin unsafe for children?" at
0.98 cosine similarity, above any useful threshold, so a neighbour is refused when the two prompts differ
in:

- negation: a different count of negating words (not, no, never, without, can't, doesn't …);
- a known antonym: one prompt alone has a word and the other alone its opposite, from a list of pairs
  (increase/decrease, allow/deny, before/after …) or by a negating prefix (safe/unsafe, legal/illegal,
  able/disable, compliant/non-compliant);
- numbers: "2 pills" and "3 pills" are different questions.

Its limits: it knows only the words in its lists (a paraphrased opposite, "is X dangerous" vs "is X
harmless", or a negation spread over a sentence can still pass), it reads English only, and it compares
words, not meaning. It only ever refuses a match, so its errors cost a cache miss, never a wrong answer
beyond what the threshold allows.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEGATIONS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without", "cannot",
    "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "shouldnt", "wouldnt",
    "wont", "hasnt", "havent", "hadnt", "mustnt", "neednt", "aint",
})
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "non-", "a")
ANTONYMS = (
    ("increase", "decrease"), ("increasing", "decreasing"), ("more", "less"), ("more", "fewer"),
    ("most", "least"), ("before", "after"), ("up", "down"), ("upper", "lower"), ("higher", "lower"),
    ("high", "low"), ("max", "min"), ("maximum", "minimum"), ("allow", "deny"), ("allow", "forbid"),
    ("allowed", "forbidden"), ("accept", "reject"), ("include", "exclude"), ("add", "remove"),
    ("buy", "sell"), ("open", "close"), ("start", "stop"), ("start", "end"), ("true", "false"),
    ("good", "bad"), ("better", "worse"), ("best", "worst"), ("positive", "negative"), ("rise", "fall"),
    ("win", "lose"), ("above", "below"), ("inside", "outside"), ("import", "export"), ("encrypt", "decrypt"),
    ("upload", "download"), ("push", "pull"), ("success", "failure"), ("pass", "fail"), ("yes", "no"),
    ("same", "different"), ("old", "new"), ("first", "last"), ("ascending", "descending"), ("on", "off"),
    ("hot", "cold"), ("warm", "cool"), ("fast", "slow"), ("faster", "slower"), ("big", "small"),
    ("bigger", "smaller"), ("large", "small"), ("larger", "smaller"), ("long", "short"), ("longer", "shorter"),
    ("heavy", "light"), ("strong", "weak"), ("safe", "dangerous"), ("safe", "risky"), ("always", "never"),
    ("all", "none"), ("everything", "nothing"), ("win", "loss"), ("gain", "loss"), ("profit", "loss"),
    ("left", "right"), ("north", "south"), ("east", "west"), ("enable", "disable"), ("on", "off"),
    ("love", "hate"), ("like", "dislike"), ("agree", "disagree"), ("with", "without"), ("pro", "con"),
    ("for", "against"), ("legal", "illegal"), ("early", "late"), ("earlier", "later"), ("young", "old"),
    ("cheap", "expensive"), ("cheaper", "more expensive"), ("easy", "hard"), ("easy", "difficult"),
    ("import", "export"), ("input", "output"), ("minimize", "maximize"), ("lowest", "highest"),
)
_OPPOSITES: dict[str, frozenset[str]] = {}
for _a, _b in ANTONYMS:
    _OPPOSITES[_a] = _OPPOSITES.get(_a, frozenset()) | {_b}
    _OPPOSITES[_b] = _OPPOSITES.get(_b, frozenset()) | {_a}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def negations(tokens: list[str]) -> int:
    return sum(1 for t in tokens if t.endswith("n't") or t.replace("'", "") in NEGATIONS)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "d"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _opposed(only_a: set[str], only_b: set[str]) -> bool:
    stems_b = {_stem(w) for w in only_b} | only_b
    for word in only_a:
        candidates = {word, _stem(word)}
        for candidate in candidates:
            if _OPPOSITES.get(candidate, frozenset()) & stems_b:
                return True
            if any(candidate.startswith(p) and candidate[len(p):] in stems_b for p in NEGATING_PREFIXES):
                return True
            if any(p + candidate in stems_b for p in NEGATING_PREFIXES):
                return True
    return False


def contradicts(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ in negation, a known antonym or a number (see the module's limits)."""
    tokens_a, tokens_b = words(a), words(b)
    if negations(tokens_a) != negations(tokens_b):
        return True
    set_a, set_b = set(tokens_a), set(tokens_b)
    if {t for t in set_a if t.isdigit()} != {t for t in set_b if t.isdigit()}:
        return True
    only_a, only_b = set_a - set_b, set_b - set_a
    return _opposed(only_a, only_b)
