"""The house: no import circle, device names only in the devices package, the engine's façade.

Read from the sources with ``ast`` (nothing is imported): module-level imports
between the package's modules, comparisons with a device name, and reaches
into an engine's backend.
"""

import ast
from pathlib import Path

import pytest

from spikedyn_brian.devices.registry import DEVICES

REPOSITORY = Path(__file__).resolve().parent.parent
#: Folder → the import name of its modules (setup.py's package_dir).
PACKAGES = {"spikedyn_brian": "spikedyn_brian", "models": "spikedyn_brian.models",
            "analysis": "spikedyn_brian.analysis", "protocols": "spikedyn_brian.protocols"}
#: Where device names may be compared: the device table and the backends.
DEVICES_PACKAGE = REPOSITORY / "spikedyn_brian" / "devices"

def _modules():
    """Import name → source path of every module of the package (not the tests)."""
    modules = {}
    for folder, name in PACKAGES.items():
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            parts = list(path.relative_to(REPOSITORY / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([name, *parts])] = path
    return modules


def _imports(tree, everywhere=False):
    """Imported names of the statements run at import time (not inside functions or
    classes), or of every import statement with ``everywhere``."""
    def statements(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            yield node
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from statements(getattr(node, field, []) or [])

    for node in (ast.walk(tree) if everywhere else statements(tree.body)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:  # a submodule, or a name of the module
                yield f"{node.module}.{alias.name}"


def import_graph(everywhere=False):
    """Module → the package's modules it imports at module level (``everywhere``: also
    inside functions)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = set()
        for target in _imports(tree, everywhere):
            # The longest known module the name starts with (a name imported
            # from a module is an edge to that module).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                imported.add(target)
        graph[name] = imported
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "spikedyn_brian.config.reading" in graph  # the sources were found
    assert "spikedyn_brian.engine" in graph["spikedyn_brian.phases"]
    assert circles(graph) == []


def test_no_function_level_import_closes_a_circle_either():
    """A function-level import is for what is heavy or optional (Brian2 in a Dask
    worker, a protocol behind a command), never to hide a circle: the graph of every
    import statement has none either (issue 18: checkpoint -> config -> engine -> phases
    -> checkpoint was one)."""
    assert circles(import_graph(everywhere=True)) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def _sources_outside_the_devices_package():
    folders = [*PACKAGES, "benchmarks"]
    for folder in folders:
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            if DEVICES_PACKAGE not in path.parents:
                yield path


SOURCES = [pytest.param(path, id=path.relative_to(REPOSITORY).as_posix())
           for path in _sources_outside_the_devices_package()]


def device_name_comparisons(tree):
    """(line, text) of every comparison with a device name literal (``device == 'genn'``,
    ``name in ('runtime', ...)``)."""
    def names(node):
        if isinstance(node, ast.Constant) and node.value in DEVICES:
            yield node.value
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for item in node.elts:
                yield from names(item)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(True for operand in (node.left, *node.comparators) for _ in names(operand)):
                yield node.lineno, ast.unparse(node)


@pytest.mark.parametrize("path", SOURCES)
def test_no_device_name_is_compared_outside_the_devices_package(path):
    """What differs between devices is the devices' own (their specs and backends):
    elsewhere a device is asked (``SPECS[name].builds_once``, ``engine.builds_once``),
    never named."""
    found = list(device_name_comparisons(ast.parse(path.read_text(), str(path))))
    assert found == []


def test_the_device_name_finder_finds_comparisons():
    tree = ast.parse("a = device == 'genn'\nb = name in ('x', 'runtime')\nc = d != 'x'\n"
                     "e = {'cuda': 1}[name]\n")
    assert [line for line, _ in device_name_comparisons(tree)] == [1, 2]


def backend_reaches(tree):
    """(line, text) of every ``<something>engine.backend`` outside the engine."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "backend"
                and ast.unparse(node.value).split(".")[-1] in ("engine", "_engine")):
            yield node.lineno, ast.unparse(node)


@pytest.mark.parametrize("path", [case for case in SOURCES
                                  if case.values[0].name != "engine.py"
                                  or case.values[0].parent.name != "spikedyn_brian"])
def test_nothing_outside_the_engine_reaches_into_its_backend(path):
    """Protocols and benchmarks use the engine's façade (check, build, is_built,
    build_status, results_directory, ...), not its backend."""
    assert list(backend_reaches(ast.parse(path.read_text(), str(path)))) == []
