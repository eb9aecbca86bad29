"""The semantic index: per bucket (a request minus its user turns), the embeddings of the prompts whose
answers were stored, each pointing at its exact entry. In process memory, bounded: at most
``per_bucket`` prompts a bucket (oldest out) and ``buckets`` buckets (least recently used out)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Neighbour:
    similarity: float
    text: str
    key: str  # the exact entry's key


class SemanticIndex:
    def __init__(self, buckets: int = 4096, per_bucket: int = 256) -> None:
        self._buckets: OrderedDict[str, list[tuple[Any, str, str]]] = OrderedDict()
        self._max_buckets = buckets
        self._per_bucket = per_bucket

    def add(self, bucket: str, vector: Any, text: str, key: str) -> None:
        rows = [row for row in self._buckets.pop(bucket, []) if row[2] != key]
        rows.append((vector, text, key))
        self._buckets[bucket] = rows[-self._per_bucket:]
        while len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)

    def nearest(self, bucket: str, vector: Any, threshold: float) -> list[Neighbour]:
        """Every neighbour at or above ``threshold``, most similar first."""
        rows = self._buckets.get(bucket)
        if not rows:
            return []
        self._buckets.move_to_end(bucket)
        import numpy as np  # the optional extra: only a semantic cache gets here

        similarities = np.stack([row[0] for row in rows]) @ vector
        order = np.argsort(-similarities)
        return [Neighbour(float(similarities[i]), rows[i][1], rows[i][2]) for i in order
                if similarities[i] >= threshold]
