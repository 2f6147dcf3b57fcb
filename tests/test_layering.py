"""The layers of the suite, checked on the source with `ast` (nothing is imported).

storage -> codecs -> core -> version_control -> (opening datasets: lakeformat.api, verify)
-> query / views / transform -> integrations (and `loaders`) -> apps and connectors.

(a) a module-level import never points up this order; (b) a function-level (lazy) import
up it only from the facade methods listed in LAZY_UP; (c) no module imports a `_`-name of
another package (`from x import _y`, `import x._y`, `x._y` on an imported module), the C
extension `lakeformat._native` excepted; (d) outside lakeformat/core, no code reaches into
a dataset's or an engine's private state (PRIVATE_ATTRS on anything but `self`).
Imports under `if TYPE_CHECKING:` are for the type checker only and are not counted.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_PACKAGES = ("lakeformat", "loaders", "connectors")

# (module prefix, layer rank): the longest matching prefix decides; one rank is one layer
LAYERS: List[Tuple[str, int]] = [
    ("lakeformat._native", 0),
    ("lakeformat.errors", 0),
    ("lakeformat.constants", 0),
    ("lakeformat.htypes", 0),
    ("lakeformat.types", 0),
    ("lakeformat.temporal", 0),
    ("lakeformat.naming", 0),
    ("lakeformat.storage", 1),
    ("lakeformat.codecs", 2),
    ("lakeformat.core", 3),
    ("lakeformat.version_control", 4),
    ("lakeformat.version_control.cli", 8),
    ("lakeformat", 5),  # the package's front door (load, empty...), with lakeformat.api
    ("lakeformat.api", 5),
    ("lakeformat.verify", 5),
    ("lakeformat.tql", 6),
    ("lakeformat.query", 6),
    ("lakeformat.views", 6),
    ("lakeformat.transform", 6),
    ("lakeformat.integrations", 7),
    ("loaders", 7),
    ("lakeformat.apps", 8),
    ("lakeformat.cli", 8),
    ("lakeformat.testing", 8),
    ("connectors", 8),
]
LAYER_NAMES = {0: "base", 1: "storage", 2: "codecs", 3: "core", 4: "version_control", 5: "api",
               6: "query/views/transform", 7: "integrations", 8: "apps/connectors"}

# the only functions allowed to import a higher layer, on call: the facade methods of a
# dataset (version control, loader, query), a View's opening of a path, and the package's
# own lazy `query`
LAZY_UP = {
    "lakeformat.core.dataset": {
        "Dataset.commit_id", "Dataset.has_head_changes", "Dataset.commit", "Dataset.checkout",
        "Dataset.log", "Dataset.reset", "Dataset.delete_branch", "Dataset.diff", "Dataset.merge",
        "Dataset.close", "Dataset.pytorch", "Dataset.query", "Dataset.explain", "Dataset.filter",
        "Dataset.read_version",
    },
    "lakeformat.core.view": {"View._root"},  # View.open of a path: lakeformat.load opens it
    "lakeformat.tql.grouped_view": {"_DerivedView.pytorch"},  # gv.pytorch(), as Dataset.pytorch
    "lakeformat": {"query"},
}

# the private state of a dataset handle and of a chunk engine: public names exist for all
PRIVATE_ATTRS = {"_state", "_engine", "_serialize", "_hidden_batches", "_update", "_pop_tensor",
                 "_reconcile", "_forget_chunk"}
PUBLIC_PRIVATE_MODULES = {"lakeformat._native"}  # the extension: public to the package

# packages whose insides are one unit for (c): a `_`-name may cross modules inside one
UNITS = ["lakeformat.storage", "lakeformat.codecs", "lakeformat.core", "lakeformat.version_control",
         "lakeformat.tql", "lakeformat.query", "lakeformat.views", "lakeformat.transform",
         "lakeformat.integrations", "lakeformat.apps", "lakeformat.testing", "loaders",
         "connectors.sql", "connectors.destination_deeplake"]


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool


def modules() -> List[Module]:
    out = []
    for top in TOP_PACKAGES:
        for p in sorted((ROOT / top).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out.append(Module(".".join(parts), p, is_pkg))
    return out


MODULES = modules()
MODULE_NAMES = {m.name for m in MODULES} | PUBLIC_PRIVATE_MODULES


def layer_of(name: str) -> Optional[int]:
    best: Optional[Tuple[str, int]] = None
    for prefix, rank in LAYERS:
        if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return best[1] if best else None


def unit_of(name: str) -> str:
    for u in UNITS:
        if name == u or name.startswith(u + "."):
            return u
    return name.rsplit(".", 1)[0] if "." in name else name


def is_ours(name: str) -> bool:
    return name.split(".")[0] in TOP_PACKAGES


@dataclass
class Import:
    target: str  # the module imported (a submodule when `from pkg import submodule`)
    names: List[str]  # the names taken from it (empty for `import x`)
    line: int
    function: Optional[str]  # the qualified name of the enclosing function; None: module level


def _resolve_from(mod: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, scope: List[str], in_function: bool) -> Iterator[Tuple[ast.AST, Optional[str]]]:
    """Every node with the qualified name of the function it runs in (None: at import)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for c in child.orelse:
                yield from _walk_one(c, scope, in_function)
            continue
        yield from _walk_one(child, scope, in_function)


def _walk_one(child: ast.AST, scope: List[str], in_function: bool) -> Iterator[Tuple[ast.AST, Optional[str]]]:
    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
        inner = scope + [child.name]
        for d in child.decorator_list:
            yield from _walk_one(d, scope, in_function)
        yield child, ".".join(scope) if in_function else None
        yield from _walk(child, inner, True)
        return
    if isinstance(child, ast.ClassDef):
        yield child, ".".join(scope) if in_function else None
        yield from _walk(child, scope + [child.name], in_function)
        return
    if isinstance(child, ast.Lambda):
        yield child, ".".join(scope) if in_function else None
        yield from _walk(child, scope + ["<lambda>"], True)
        return
    yield child, ".".join(scope) if in_function else None
    yield from _walk(child, scope, in_function)


def parse(mod: Module) -> ast.Module:
    return ast.parse(mod.path.read_text(), str(mod.path))


def imports_of(mod: Module, tree: ast.Module) -> List[Import]:
    out = []
    for node, fn in _walk(tree, [], False):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append(Import(a.name, [], node.lineno, fn))
        elif isinstance(node, ast.ImportFrom):
            src = _resolve_from(mod, node)
            plain = []
            for a in node.names:
                sub = f"{src}.{a.name}"
                if sub in MODULE_NAMES:
                    out.append(Import(sub, [], node.lineno, fn))  # `from pkg import submodule`
                else:
                    plain.append(a.name)
            if plain:
                out.append(Import(src, plain, node.lineno, fn))
    return out


def module_aliases(mod: Module, tree: ast.Module) -> dict:
    """Local names bound to one of our modules by an import: name -> module."""
    out = {}
    for node, _ in _walk(tree, [], False):
        if isinstance(node, ast.Import):
            for a in node.names:
                if is_ours(a.name):
                    if a.asname:
                        out[a.asname] = a.name
                    else:
                        out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve_from(mod, node)
            for a in node.names:
                if f"{src}.{a.name}" in MODULE_NAMES:
                    out[a.asname or a.name] = f"{src}.{a.name}"
    return out


def _dotted(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


# ---- the checks -------------------------------------------------------------------------------------
def upward_imports(mod: Module, tree: ast.Module) -> List[str]:
    """(a) and (b) for one module."""
    mine = layer_of(mod.name)
    out = []
    for imp in imports_of(mod, tree):
        if not is_ours(imp.target):
            continue
        theirs = layer_of(imp.target)
        if mine is None or theirs is None or theirs <= mine:
            continue
        what = f"{mod.name}:{imp.line} ({LAYER_NAMES[mine]}) imports {imp.target} ({LAYER_NAMES[theirs]})"
        if imp.function is None:
            out.append(what + " at module level")
        elif imp.function not in LAZY_UP.get(mod.name, set()):
            out.append(what + f" in {imp.function}, which is not a facade method listed in LAZY_UP")
    return out


def private_imports(mod: Module, tree: ast.Module) -> List[str]:
    """(c) for one module."""
    out = []
    here = unit_of(mod.name)

    def foreign(target: str) -> bool:
        return is_ours(target) and unit_of(target) != here and target not in PUBLIC_PRIVATE_MODULES

    def private(part: str) -> bool:
        return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))

    for imp in imports_of(mod, tree):
        if foreign(imp.target):
            bad_mod = [p for p in imp.target.split(".") if private(p)]
            if bad_mod:
                out.append(f"{mod.name}:{imp.line} imports the private module {imp.target}")
            for n in imp.names:
                if private(n):
                    out.append(f"{mod.name}:{imp.line} imports {n} from {imp.target}")
    aliases = module_aliases(mod, tree)
    for node, _ in _walk(tree, [], False):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = _dotted(node.value)
            if base is None:
                continue
            head, _, rest = base.partition(".")
            if head not in aliases:
                continue
            target = aliases[head] + ("." + rest if rest else "")
            if target in MODULE_NAMES and foreign(target):
                out.append(f"{mod.name}:{node.lineno} uses {target}.{node.attr}")
    return out


def private_reach_ins(mod: Module, tree: ast.Module) -> List[str]:
    """(d) for one module."""
    if mod.name == "lakeformat.core" or mod.name.startswith("lakeformat.core."):
        return []
    out = []
    for node, _ in _walk(tree, [], False):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRS:
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                continue
            out.append(f"{mod.name}:{node.lineno} reaches into .{node.attr}")
    return out


PARSED = [(m, parse(m)) for m in MODULES]


def test_every_module_has_a_layer():
    missing = [m.name for m in MODULES if layer_of(m.name) is None]
    assert not missing, f"modules without a layer in LAYERS: {missing}"


def test_imports_point_down_the_layers():
    bad = [v for m, t in PARSED for v in upward_imports(m, t)]
    assert not bad, "imports up the layers:\n" + "\n".join(bad)


def test_no_private_names_across_packages():
    bad = [v for m, t in PARSED for v in private_imports(m, t)]
    assert not bad, "private names imported from another package:\n" + "\n".join(bad)


def test_no_reach_ins_into_private_state():
    bad = [v for m, t in PARSED for v in private_reach_ins(m, t)]
    assert not bad, "reach-ins into a dataset's or engine's private state:\n" + "\n".join(bad)


# ---- the checker itself, on small sources -------------------------------------------------------------
def _check(name: str, src: str) -> List[str]:
    mod = Module(name, Path(f"/x/{name.replace('.', '/')}.py"), False)
    tree = ast.parse(src)
    return upward_imports(mod, tree) + private_imports(mod, tree) + private_reach_ins(mod, tree)


@pytest.mark.parametrize("name, src, found", [
    ("lakeformat.core.x", "from lakeformat.version_control import api\n", "at module level"),
    ("lakeformat.core.x", "import loaders\n", "at module level"),
    ("lakeformat.core.x", "def f():\n    from lakeformat.version_control import api\n", "not a facade method"),
    ("lakeformat.core.x", "class A:\n    def g(self):\n        import lakeformat.tql\n", "A.g"),
    ("lakeformat.version_control.x", "from lakeformat.core.chunk_deletes import _helper\n", "imports _helper"),
    ("connectors.sql.x", "from lakeformat.version_control import api as vc\nvc._drop_version_folder(1, 2)\n",
     "uses lakeformat.version_control.api._drop_version_folder"),
    ("connectors.sql.x", "def f(ds):\n    return ds._state.storage\n", "reaches into ._state"),
    ("loaders.x", "def f(eng):\n    eng._reconcile()\n", "reaches into ._reconcile"),
])
def test_the_checker_finds(name, src, found):
    got = _check(name, src)
    assert any(found in v for v in got), got


@pytest.mark.parametrize("name, src", [
    ("lakeformat.core.x", "from lakeformat.storage import StorageProvider\nfrom lakeformat import errors\n"),
    ("lakeformat.core.x", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lakeformat.version_control import api\n"),
    ("lakeformat.core.dataset", "class Dataset:\n    def commit(self):\n        from lakeformat.version_control import api\n"),
    ("lakeformat.version_control.merge", "from lakeformat.version_control.diff import _Versions\n"),
    ("lakeformat.core.x", "from lakeformat import _native\nx = _native._kernel\n"),
    ("connectors.sql.x", "class A:\n    def f(self):\n        return self._state\n"),
    ("lakeformat.core.x", "def f(ds):\n    return ds._engine('x')\n"),
])
def test_the_checker_allows(name, src):
    assert _check(name, src) == []
