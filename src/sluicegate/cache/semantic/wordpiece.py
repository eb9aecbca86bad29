"""BERT's uncased WordPiece tokenizer (what all-MiniLM-L6-v2 was trained with), pure Python over the
model's vocab.txt: lower case, accents stripped, split on white space and punctuation (CJK characters on
their own), then each word greedily into the longest pieces of the vocabulary ("##" marks a continuation)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

MAX_WORD_CHARS = 100  # longer "words" become [UNK], as in BERT


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


def token_ids(text: str, vocab: Mapping[str, int], max_tokens: int) -> list[int]:
    """[CLS] pieces… [SEP], cut to ``max_tokens``."""
    pieces = [piece for word in basic_words(text) for piece in word_pieces(word, vocab)]
    ids = [vocab[piece] for piece in pieces[: max_tokens - 2]]
    return [vocab["[CLS]"], *ids, vocab["[SEP]"]]
