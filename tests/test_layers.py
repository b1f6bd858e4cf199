"""Dependencies point one way: every import of the project's own modules goes to the same
layer or a lower one, and no module depends on itself through others.

Layers, bottom to top: ``fp8hw`` (what every layer shares), ``golden`` (the numpy model),
``boards`` (board table, PLL settings, FPGA tool flow), ``hw`` (the hardware and its
commands), ``sim`` (simulation), ``host`` (the driver), and the ``fp8hw`` console script.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("fp8hw", "golden", "boards", "hw", "sim", "host", "lab", "fp8hw.__main__")
PACKAGES = ("fp8hw", "golden", "boards", "hw", "sim", "host", "lab")

pytestmark = pytest.mark.quick


def layer(module: str) -> int:
    if module == "fp8hw.__main__" or module.startswith("fp8hw.__main__."):
        return LAYERS.index("fp8hw.__main__")
    return LAYERS.index(module.split(".")[0])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports, anywhere in it (inside functions too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # ``from package import module`` imports the module; else the package's name.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(m, p, set(modules)) for m, p in modules.items()}


def test_imports_point_down():
    wrong = [f"{m} (layer {LAYERS[layer(m)]}) imports {d} (layer {LAYERS[layer(d)]})"
             for m, deps in sorted(import_graph().items()) for d in sorted(deps)
             if layer(d) > layer(m)]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_a_backward_import(tmp_path):
    """A planted backward import is found (the walk above cannot silently see nothing)."""
    graph = import_graph()
    assert "golden.formats" in graph["golden.mpe"]
    assert any(layer(d) < layer(m) for m, deps in graph.items() for d in deps)
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from hw.units.mpe import MPE\n")
    assert imports_of("golden.planted", planted, set(graph)) == {"hw.units.mpe"}
    assert layer("hw.units.mpe") > layer("golden.planted")
