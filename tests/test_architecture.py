"""The shape of the code: pipeline/ never imports the studio, no import cycles, one list of stages.

The import graph is read from the source (``ast``), every ``import`` statement counted, at
module level or inside a function, so a cycle cannot hide in a lazy import. An internal
import inside a function is allowed only where the imported module pulls in a heavy
dependency (toponymy, onnxruntime, LanceDB, ...) when it loads — the one reason to defer it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "studio")
#: third-party packages that take seconds or hundreds of MB to import: worth a lazy import
HEAVY = {"toponymy", "onnxruntime", "lancedb", "umap", "pynndescent", "hdbscan", "numba", "voyageai", "openai",
         "anthropic", "boto3", "botocore", "panel", "holoviews", "datashader", "bokeh", "wordllama", "transformers",
         "tokenizers", "h5py", "matplotlib", "litellm", "sklearn", "shapely", "scipy", "moto"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str:
    """The module an import names: the longest prefix that is one of ours (else the name itself)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return name


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function?, line) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((_target(a.name), in_function, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                for alias in child.names:  # `from pipeline.stages import lineage` imports a submodule
                    sub = f"{base}.{alias.name}"
                    found.append((_target(sub if sub in MODULES else base), in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _heavy(module: str, seen=None) -> bool:
    """Whether loading ``module`` imports a heavy third-party package (through its module-level imports)."""
    seen = seen if seen is not None else set()
    if module in seen:
        return False
    seen.add(module)
    if module not in MODULES:
        return module.split(".")[0] in HEAVY
    return any(_heavy(target, seen) for target, lazy, _ in GRAPH[module] if not lazy)


def test_pipeline_never_imports_the_studio():
    offenders = [f"{m}:{line} imports {t}" for m in MODULES if m.startswith("pipeline")
                 for t, _, line in GRAPH[m] if t.split(".")[0] == "studio"]
    assert offenders == []


def test_no_import_cycles():
    edges = {m: sorted({t for t, _, _ in GRAPH[m] if t in MODULES and t != m}) for m in MODULES}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strongconnect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
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
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    assert cycles == []


def test_internal_imports_are_at_module_level_unless_they_load_something_heavy():
    lazy = [f"{m}:{line} imports {t} inside a function" for m in MODULES for t, inside, line in GRAPH[m]
            if inside and t in MODULES and not _heavy(t)]
    assert lazy == []


def test_the_stage_list_is_written_once():
    """No sequence literal outside the registry names most of the stages (a second list of stages)."""
    from pipeline.stages.registry import STAGE_NAMES

    offenders = []
    for module, path in MODULES.items():
        if module == "pipeline.stages.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)} & set(STAGE_NAMES)
                if len(names) >= 5:
                    offenders.append(f"{module}:{node.lineno} lists {sorted(names)}")
    assert offenders == []


def test_the_analysis_sees_real_imports():
    """Guards the test itself: known edges are found, so an empty result above means something."""
    targets = {t for t, _, _ in GRAPH["pipeline.stages.registry"]}
    assert {"pipeline.stages.lineage", "pipeline.core.workspace", "pipeline.stages.links"} <= targets
    assert _heavy("pipeline.stages.labels.stage") and not _heavy("pipeline.stages.lineage")
