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
import unicodedata
from fractions import Fraction

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


# Numbers: every numeric expression in order, as (value, unit). A value is exact (fractions.Fraction, so
# "2.50", "5/2" and "2½" name the same 5/2 and "1e3" is 1000), signed ("-5" is not "5"), and carries the word
# or symbol written next to it ("5mg", "5 mg", "5%", "$5", "2nd"), so "take 2 pills then 3" and "take 3 pills
# then 2" differ, as do "5mg" and "5 ml".
_NUMBER_TOKEN = re.compile(r"""
    (?P<number>
        (?P<sign>(?<![\w.,])[-+\u2212])?
        (?P<currency>[$\u20ac\u00a3\u00a5\u20b9])?
        (?P<digits>(?:(?<!\d)\.)?\d+(?:[.,]\d+)*)
        (?P<exponent>e[-+\u2212]?\d+)?
        (?P<denominator>/\d+)?
        (?P<unit>[%\u2030\u00b0\u2032\u2033]|[^\W\d_]+)?
    )
    | (?P<word>[^\W\d_]+)
    | (?P<symbol>[$\u20ac\u00a3\u00a5\u20b9%\u2030\u00b0])
""", re.VERBOSE)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_JOIN = re.compile(r"[\s-]*")  # what may stand between a number and its unit, or the words of one number
SMALL = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
SMALL.update({"thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
              "ninety": 90, "once": 1, "twice": 2, "thrice": 3, "nil": 0, "nought": 0, "naught": 0})
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12,
          "dozen": 12, "hundreds": 100, "thousands": 1000, "millions": 10**6, "billions": 10**9, "dozens": 12}
FRACTIONS = {"half": Fraction(1, 2), "halves": Fraction(1, 2), "quarter": Fraction(1, 4),
             "quarters": Fraction(1, 4)}
ORDINALS = {w: i for i, w in enumerate((
    "zeroth", "first", "", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
    "nineteenth", "twentieth")) if w}  # not "second": far more often the unit of time
ORDINALS.update({"thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
                 "eightieth": 80, "ninetieth": 90, "hundredth": 100, "thousandth": 1000, "millionth": 10**6})
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})
_OPERATORS = re.compile(r"[-+*/^=<>:\u00d7\u00f7\u2212\u2264\u2265]")
_MINUS = frozenset({"minus"})
MAX_EXPONENT = 100  # 1e999999999 is compared as written, never computed
MAX_DIGITS = 40  # a longer run of digits (an id, a hash) is compared as written, not as a value


def _spell_numeric_characters(text: str) -> str:
    """½ → " 1/2 ", ² → " 2 ", Ⅻ → " 12 ", 五 → " 5 ": characters with a numeric value that are not plain
    decimal digits (those the pattern reads itself), written out so they are compared as numbers."""
    if text.isascii():
        return text
    out = []
    for char in text:
        if not char.isascii() and not char.isdecimal():
            value = unicodedata.numeric(char, None)
            if value is not None:
                fraction = Fraction(value).limit_denominator(1000)
                out.append(f" {fraction} ")
                continue
        out.append(char)
    return "".join(out)


def _value(match: re.Match[str]) -> str:
    digits = "".join(str(unicodedata.decimal(c)) if not c.isascii() else c for c in match["digits"])
    exponent = (match["exponent"] or "").replace("\u2212", "-")
    denominator = match["denominator"] or ""
    if _THOUSANDS.fullmatch(digits):
        digits = digits.replace(",", "")
    written = digits + exponent + denominator
    huge = bool(exponent) and abs(int(exponent[1:])) > MAX_EXPONENT
    if "," in digits or digits.count(".") > 1 or len(digits) > MAX_DIGITS or huge:
        value = written  # a version (1.2.3), a decimal comma, an id: compared as written
    else:
        number = Fraction(digits) * (Fraction(10) ** int(exponent[1:]) if exponent else 1)
        if denominator:
            divisor = int(denominator[1:])
            value = str(number / divisor) if divisor else written
        else:
            value = str(number)
    sign = match["sign"]
    if sign in ("-", "\u2212") and value.strip("0./") != "":
        value = "-" + value
    return value


def numbers(text: str) -> list[tuple[str, str]]:
    """Every number in ``text``, in order, as (value, the unit written next to it or "")."""
    text = _spell_numeric_characters(text.lower().replace("\u2019", "'"))
    found: list[tuple[str, str]] = []
    tokens = list(_NUMBER_TOKEN.finditer(text))
    i = 0
    negative = False

    def adjacent(j: int) -> re.Match[str] | None:
        """The token after ``tokens[j]`` when only white space or a hyphen stands between."""
        if j + 1 < len(tokens) and _JOIN.fullmatch(text, tokens[j].end(), tokens[j + 1].start()):
            return tokens[j + 1]
        return None

    def unit_after(j: int) -> tuple[str, int]:
        following = adjacent(j)
        if following is not None and following["word"] and following["word"] not in _NUMBER_WORDS:
            return following["word"], j + 1
        if following is not None and following["symbol"]:
            return following["symbol"], j + 1
        return "", j

    while i < len(tokens):
        token = tokens[i]
        word = token["word"]
        if token["number"]:
            value, unit = _value(token), token["unit"] or ""
            if i and tokens[i - 1]["number"] and not tokens[i - 1]["unit"]:  # "2+2", "2-2", "10:30"
                value = "".join(_OPERATORS.findall(text, tokens[i - 1].end(), token.start())) + value
            if negative and not value.startswith("-"):
                value = "-" + value
            if token["currency"]:
                unit = token["currency"] + unit
            if unit in _ORDINAL_SUFFIXES:
                unit = "th"
            elif not unit:
                scale = adjacent(i)
                while scale is not None and scale["word"] in SCALES and _is_exact(value):
                    value = str(Fraction(value) * SCALES[scale["word"]])
                    i += 1
                    scale = adjacent(i)
                unit, i = unit_after(i)
            found.append((value, unit))
            negative = False
        elif word in _MINUS:
            negative = adjacent(i) is not None
        elif word in SMALL or word in SCALES:
            total, current, j = 0, 0, i
            while True:
                w = tokens[j]["word"]
                if w in SMALL:
                    current += SMALL[w]
                elif w in SCALES:
                    if SCALES[w] >= 1000:
                        total += max(current, 1) * SCALES[w]
                        current = 0
                    else:
                        current = max(current, 1) * SCALES[w]
                nxt = adjacent(j)
                if nxt is None or not (nxt["word"] in SMALL or nxt["word"] in SCALES):
                    break
                j += 1
            value = str(total + current)
            if negative:
                value = "-" + value
            i = j
            unit, i = unit_after(i)
            found.append((value, unit))
            negative = False
        elif word in FRACTIONS:
            unit, i = unit_after(i)
            found.append((str(FRACTIONS[word]), unit))
            negative = False
        elif word in ORDINALS:
            found.append((str(ORDINALS[word]), "th"))
            negative = False
        else:
            negative = False
        i += 1
    return found


def _is_exact(value: str) -> bool:
    try:
        Fraction(value)
    except (ValueError, ZeroDivisionError):
        return False
    return True


_NUMBER_WORDS = frozenset(SMALL) | frozenset(SCALES) | frozenset(FRACTIONS) | frozenset(ORDINALS)


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
    if numbers(a) != numbers(b):
        return True
    set_a, set_b = set(tokens_a), set(tokens_b)
    only_a, only_b = set_a - set_b, set_b - set_a
    return _opposed(only_a, only_b)
