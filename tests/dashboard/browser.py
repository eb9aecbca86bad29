"""Playwright driving Debian's chromium (apt package ``chromium``): never a browser Playwright downloads.

Screenshots go to ``tmp/artefacts/dashboard/`` in the repository (git-ignored), or ``$SLUICEGATE_ARTEFACTS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]


def artefacts_dir() -> Path:
    folder = Path(os.environ.get("SLUICEGATE_ARTEFACTS", ROOT / "tmp" / "artefacts")) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def launch(playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def shot(page, name: str) -> Path:
    path = artefacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
