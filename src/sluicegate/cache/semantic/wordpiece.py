"""BERT's uncased WordPiece tokenizer (what all-MiniLM-L6-v2 was trained with), pure Python over the
model's vocab.txt: lower case, accents stripped, split on white space and punctuation (CJK characters on
their own), then each word greedily into the longest pieces of the vocabulary ("##" marks a continuation).

``encode`` is what the semantic cache uses: the ids only when the model sees the whole text, None when it
would not (the text is longer than the window can hold, or a word is not in the vocabulary and would be
read as [UNK]); such a text is compared by the exact match alone. It decides over a bounded text: one
longer than ``max_chars(window)`` characters is refused before any tokenizing."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

MAX_WORD_CHARS = 100  # longer "words" become [UNK], as in BERT
WINDOW = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json), [CLS] and [SEP] included
MAX_PIECE_CHARS = 18  # the longest piece of the model's vocabulary ("telecommunications"), "##" not counted


def max_chars(window: int = WINDOW) -> int:
    """The most characters a text the model sees whole can have: each of its ``window - 2`` pieces covers
    at most MAX_PIECE_CHARS of them. White space and dropped characters count too (a text padded with
    more of them than that is refused as well: a miss, never a wrong answer), so the bound is one length
    check, and tokenizing never runs over more than this many characters."""
    return (window - 2) * MAX_PIECE_CHARS


def load_vocab(text: str) -> dict[str, int]:
    return {line.rstrip("\n"): index for index, line in enumerate(text.splitlines())}


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F)


def basic_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    words: list[str] = []
    current: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Mn" or char == "\ufffd" or (category.startswith("C") and not char.isspace()):
            continue  # accents and control characters go
        if char.isspace() or _is_punctuation(char) or _is_cjk(ord(char)):
            if current:
                words.append("".join(current))
                current = []
            if not char.isspace():
                words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def word_pieces(word: str, vocab: Mapping[str, int]) -> list[str]:
    if len(word) > MAX_WORD_CHARS:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def encode(text: str, vocab: Mapping[str, int], window: int = WINDOW) -> list[int] | None:
    """[CLS] pieces… [SEP] when the whole of ``text`` fits in ``window`` tokens with no [UNK]; else None."""
    if len(text) > max_chars(window):
        return None
    ids = [vocab["[CLS]"]]
    for word in basic_words(text):
        for piece in word_pieces(word, vocab):
            if piece == "[UNK]" or len(ids) >= window - 1:
                return None
            ids.append(vocab[piece])
    ids.append(vocab["[SEP]"])
    return ids
