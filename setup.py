"""The package's build: pyproject.toml says everything but this: the request path's modules, compiled to C
with mypyc (docs/architecture.md, "Choices and why").

Every request runs these modules' Python: the server edge, the pipeline and dispatcher, the upstream client
and the request log's share of the hop. Compiled, they run the same code without the interpreter's dispatch
(docs/benchmarks.md, "The request path compiled"). A build without mypy or a C compiler, or with
SLUICEGATE_COMPILE=0, is the pure-Python package, identical in behaviour.
"""

from __future__ import annotations

import os
import shutil
import sysconfig

from setuptools import setup

COMPILED = [  # each module's path under src/sluicegate/; they compile as one group, so their calls stay in C
    "types.py", "header_names.py", "ids.py", "jsontext.py", "write_batch.py",
    "server/native.py", "server/routes.py", "server/headers.py", "server/middleware.py",
    "pipeline/core.py", "pipeline/admit.py", "pipeline/steps.py", "pipeline/limit.py",
    "dispatch.py", "prepare.py", "foreground.py",
    "upstream/h1.py", "upstream/exchange.py", "upstream/transport.py", "upstream/guard.py",
    "telemetry/record.py", "telemetry/rows.py", "telemetry/redact.py", "telemetry/storable.py",
    "telemetry/usage.py", "telemetry/metrics.py", "telemetry/journal.py", "telemetry/sink.py",
]


def compiled_modules() -> list:
    if os.environ.get("SLUICEGATE_COMPILE", "1") == "0":
        return []
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        print(f"sluicegate: no C compiler ({compiler}): building the pure-Python package")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("sluicegate: mypyc is not installed: building the pure-Python package")
        return []
    paths = [os.path.join("src", "sluicegate", path) for path in COMPILED]
    return mypycify(paths, group_name="sluicegate", opt_level="3")


setup(ext_modules=compiled_modules())
