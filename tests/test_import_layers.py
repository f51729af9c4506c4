"""The project's shape, checked: layers that only point down, no import circles, small files.

Layers, lowest first: kernels < models < calibration < live < bench. Every import in the
project's code is read from the source (function-local imports included, since they run too)
and resolved to the file it loads.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("kernels", "models", "calibration", "live", "bench")
MAX_LINES = 350


def project_files() -> dict[str, Path]:
    """module name -> file, for every module of the five packages."""
    out = {}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(path: Path, modules: dict[str, Path], own: str) -> set[str]:
    """The project modules that `path` imports (as module names), resolved to files."""
    found = set()
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` loads pkg.sub when that is a module, else pkg itself
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != own:
                found.add(name)
    return found


def defined_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments, imports), including
    those inside top-level if/try/with blocks: what `from module import name` can take from it."""
    names: set[str] = set()

    def targets(node) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)

    def visit(body) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    targets(t)
                    # lazy exports: a module __getattr__ serving the keys of _EXPORTS (models/__init__.py)
                    if isinstance(t, ast.Name) and t.id == "_EXPORTS" and isinstance(node.value, ast.Dict):
                        names.update(k.value for k in node.value.keys if isinstance(k, ast.Constant))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                visit(getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
    visit(ast.parse(path.read_text(), str(path)).body)
    return names


def unresolved_imports(path: Path, modules: dict[str, Path], own: str) -> list[str]:
    """Imports of the project's packages that load nothing: a module that does not exist, or a name
    its module does not define (`python -m bench track` once imported a module that was gone)."""
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names
                    if a.name.split(".")[0] in LAYERS and a.name not in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] not in LAYERS:
                continue
            if base not in modules:
                bad.append(f"from {base} import ...: no module {base}")
                continue
            defined = defined_names(modules[base])
            bad += [f"from {base} import {a.name}" for a in node.names
                    if a.name != "*" and f"{base}.{a.name}" not in modules and a.name not in defined]
    return bad


def import_graph() -> dict[str, set[str]]:
    modules = project_files()
    return {name: imports_of(path, modules, name) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_imports_only_point_down():
    graph = import_graph()
    rank = {pkg: i for i, pkg in enumerate(LAYERS)}
    upward = [f"{src} imports {dst}" for src, targets in sorted(graph.items()) for dst in sorted(targets)
              if rank[dst.split(".")[0]] > rank[src.split(".")[0]]]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_circles_between_files():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def _package_of(module: str) -> str:
    """The (sub)package a module belongs to; an entry point (`__main__`) stands on its own, above all."""
    if module.endswith(".__main__") or (ROOT / Path(*module.split("."))).is_dir():
        return module
    return module.rpartition(".")[0]


def test_no_import_circles_between_packages():
    graph = import_graph()
    packages: dict[str, set[str]] = {}
    for src, targets in graph.items():
        packages.setdefault(_package_of(src), set()).update(_package_of(t) for t in targets)
    for key, targets in packages.items():
        targets.discard(key)
    found = cycles(packages)
    assert not found, "circles between packages:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_project_import_resolves():
    modules = project_files()
    bad = [f"{name}: {b}" for name, path in sorted(modules.items()) for b in unresolved_imports(path, modules, name)]
    assert not bad, "imports that load nothing:\n" + "\n".join(bad)


def test_the_checker_sees_an_import_of_nothing(tmp_path):
    modules = project_files()
    probe = tmp_path / "probe.py"
    probe.write_text("from live.face_params import ParamEstimator\nimport live.no_such_module\n"
                     "from live.tracking.estimator import make_estimator, make_estimater\n"
                     "from live.pipeline import scene\nfrom bench import records\n")
    assert unresolved_imports(probe, modules, "bench.probe") == [
        "from live.face_params import ...: no module live.face_params", "import live.no_such_module",
        "from live.tracking.estimator import make_estimater"]


def test_the_checker_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_source_file_over_the_size_limit():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in project_files().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"files over {MAX_LINES} lines:\n" + "\n".join(long)


def test_module_names_say_one_thing():
    """No two modules share a file name (outside __init__/__main__): a name means one thing."""
    by_name: dict[str, list[str]] = {}
    for name, path in project_files().items():
        if path.name not in ("__init__.py", "__main__.py"):
            by_name.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    clashes = {n: paths for n, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"files of one name in several places: {clashes}"
