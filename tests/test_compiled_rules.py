"""What mypyc-compiled modules (setup.py's list) ask of their source, checked by machine where compiled code
would quietly mean something else than the same source interpreted (docs/architecture.md, "The request path
compiled"):

- a class attribute set in a compiled class's body is not seen as one (a subclass of a Python class that
  says ``status = 421`` answers with its base's ``status``; an exception's is missing): such a class stays a
  Python class, ``@mypyc_attr(native_class=False)``;
- a name bound by several ``except`` clauses of one function keeps the type of the first (the second
  clause's exception is a ``TypeError``): one name per clause type.

And one that keeps a speed-up true: a dataclass's generated ``__init__`` is Python that the dataclasses module
writes at import, so it stays interpreted in a compiled module (~0.5 µs a call, against ~0.06 µs compiled).
The classes every request builds say ``init=False`` and write their own, which must take every field, in
order, and set each one.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from tests.conftest import stale_compiled_modules

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "sluicegate"


def compiled_modules() -> list[str]:
    listing = (ROOT / "setup.py").read_text().split("COMPILED = [", 1)[1].split("\n]", 1)[0]
    return re.findall(r'"([^"]+\.py)"', listing)


def test_the_compiled_modules_exist():
    modules = compiled_modules()
    assert len(modules) >= 20 and all((SRC / module).is_file() for module in modules)


def _class_attributes(node: ast.ClassDef) -> list[str]:
    names = []
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            names += [ast.unparse(target) for target in statement.targets]
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            names.append(ast.unparse(statement.target))
    return [name for name in names if name != "__slots__"]


def _stays_python(node: ast.ClassDef) -> bool:
    decorators = [ast.unparse(decorator) for decorator in node.decorator_list]
    bases = [ast.unparse(base) for base in node.bases]
    return ("mypyc_attr(native_class=False)" in decorators or any("dataclass" in d for d in decorators)
            or "NamedTuple" in bases)


@pytest.mark.parametrize("module", compiled_modules())
def test_a_class_with_class_attributes_stays_a_python_class(module):
    tree = ast.parse((SRC / module).read_text())
    wrong = [f"{node.name}: {', '.join(_class_attributes(node))}" for node in ast.walk(tree)
             if isinstance(node, ast.ClassDef) and _class_attributes(node) and not _stays_python(node)]
    assert not wrong, f"{module}: mark these @mypyc_attr(native_class=False) or set the values in __init__"


@pytest.mark.parametrize("module", compiled_modules())
def test_an_except_name_has_one_type_per_function(module):
    wrong = _except_names_of_several_types(ast.parse((SRC / module).read_text()))
    assert not wrong, f"{module}: give each except clause's exception a name of its own"


def _except_names_of_several_types(tree: ast.Module) -> list[str]:
    wrong = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        kinds: dict[str, set[str]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                kinds.setdefault(node.name, set()).add(ast.unparse(node.type))
        wrong += [f"{function.name}: {name} as {sorted(types)}" for name, types in kinds.items() if len(types) > 1]
    return wrong


@pytest.mark.parametrize("source", [
    "class A(Base):\n    status = 421\n",
    "class A(Exception):\n    code: int = 1\n",
])
def test_the_class_rule_sees_an_attribute(source):
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ClassDef) and _class_attributes(node) and not _stays_python(node)


def test_the_except_rule_sees_a_name_of_two_types():
    source = "def f():\n    try:\n        g()\n    except KeyError as exc:\n        h(exc)\n    except Exception as exc:\n        h(exc)\n"
    assert _except_names_of_several_types(ast.parse(source)) == ["f: exc as ['Exception', 'KeyError']"]
    assert not _except_names_of_several_types(ast.parse(source.replace("Exception as exc", "Exception as error")))


def test_a_source_edited_after_its_compiled_module_is_stale(tmp_path):
    (tmp_path / "server").mkdir()
    for name in ("ids", "server/native"):
        (tmp_path / f"{name}.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
        (tmp_path / f"{name}.py").write_text("")
        os.utime(tmp_path / f"{name}.py", (1_000, 1_000))  # written before its extension module
    assert stale_compiled_modules(tmp_path) == []
    os.utime(tmp_path / "server" / "native.py")  # edited now, after the build
    assert stale_compiled_modules(tmp_path) == ["server/native.py"]


# Built at least once for every request (each an interpreted dataclass __init__ otherwise).
PER_REQUEST = {
    "types.py": {"RequestContext", "Call", "AttemptRecord", "Prepared", "Outcome"},
    "telemetry/record.py": {"StreamTap", "RequestRecord"},
    "pipeline/core.py": {"RequestState"},
    "dispatch.py": {"Walk"},
    "telemetry/rows.py": {"Derived"},
}


def _init_faults(node: ast.ClassDef) -> list[str]:
    """What a dataclass's own __init__ gets wrong: fields it does not take (in order) or does not set."""
    fields = [statement.target.id for statement in node.body
              if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
              and not ast.unparse(statement.annotation).startswith("ClassVar")]
    init = next((statement for statement in node.body
                 if isinstance(statement, ast.FunctionDef) and statement.name == "__init__"), None)
    if init is None:
        return [f"{node.name}: no __init__ of its own"]
    faults = []
    taken = [argument.arg for argument in init.args.args[1:]]
    if taken != fields:
        faults.append(f"{node.name}: __init__ takes {taken}, the fields are {fields}")
    set_here = {target.attr for statement in init.body if isinstance(statement, ast.Assign)
                for target in statement.targets if isinstance(target, ast.Attribute)}
    faults += [f"{node.name}: __init__ does not set {name}" for name in fields if name not in set_here]
    return faults


@pytest.mark.parametrize("module", sorted(PER_REQUEST))
def test_the_dataclasses_built_per_request_have_a_compiled_init_that_takes_every_field(module):
    assert module in compiled_modules()
    classes = {node.name: node for node in ast.walk(ast.parse((SRC / module).read_text()))
               if isinstance(node, ast.ClassDef)}
    faults = []
    for name in sorted(PER_REQUEST[module]):
        decorators = [ast.unparse(decorator) for decorator in classes[name].decorator_list]
        if not any("dataclass" in d and "init=False" in d for d in decorators):
            faults.append(f"{name}: not @dataclass(..., init=False)")
        faults += _init_faults(classes[name])
    assert not faults, f"{module}: {faults}"


def test_the_init_rule_sees_a_field_left_out():
    source = ("@dataclass(slots=True, init=False)\nclass A:\n    x: int\n    y: int = 0\n\n"
              "    def __init__(self, x: int, y: int = 0) -> None:\n        self.x = x\n        self.y = y\n")
    assert _init_faults(ast.parse(source).body[0]) == []
    added = source.replace("    y: int = 0\n", "    y: int = 0\n    z: int = 1\n", 1)
    assert _init_faults(ast.parse(added).body[0]) == [
        "A: __init__ takes ['x', 'y'], the fields are ['x', 'y', 'z']", "A: __init__ does not set z"]
