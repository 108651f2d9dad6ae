"""The package's layers hold: no import cycle, no upward import, the runtime never imports training code.

Read from the source with the standard library's ast, so every import counts, also those inside
functions. ARCHITECTURE.md explains the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "wardrobe"

LAYERS = {
    # Lower numbers sit lower: a module imports only from its own layer or below.
    "wardrobe": 0, "wardrobe.errors": 0, "wardrobe.files": 0, "wardrobe.data": 0,
    "wardrobe.lang": 1, "wardrobe.settings": 1, "wardrobe.images": 1, "wardrobe.preprocess": 1, "wardrobe.taxonomy": 1,
    "wardrobe.nets": 1, "wardrobe.baseline": 1, "wardrobe.button": 1, "wardrobe.whitebalance": 1,
    "wardrobe.running": 1, "wardrobe.kdtree": 1, "wardrobe.css3": 1,
    "wardrobe.status": 1,
    "wardrobe.audio": 2, "wardrobe.camera": 2, "wardrobe.segment": 2, "wardrobe.bundle": 2, "wardrobe.speech": 2,
    "wardrobe.quality": 2, "wardrobe.light": 2, "wardrobe.colour_decision": 2,
    "wardrobe.colours": 3, "wardrobe.colour_inputs": 3, "wardrobe.classify": 3, "wardrobe.debug": 3, "wardrobe.push": 3, "wardrobe.signing": 3,
    "wardrobe.phrase": 4, "wardrobe.models_store": 4, "wardrobe.closet": 4, "wardrobe.matching": 4,
    "wardrobe.history": 4,
    "wardrobe.pipeline": 5, "wardrobe.doctor": 5, "wardrobe.corrections": 5, "wardrobe.reviews": 5,
    "wardrobe.wiring": 6,
    "wardrobe.daemon": 7, "wardrobe.bench": 7,
    "wardrobe.cli": 8, "wardrobe.__main__": 8,
    # The caretaker's page: a top layer beside the command line (which starts it); it never imports cli or daemon.
    "wardrobe.web": 8, "wardrobe.web.app": 8, "wardrobe.web.auth": 8, "wardrobe.web.password": 8,
    "wardrobe.web.presses": 8, "wardrobe.web.security": 8, "wardrobe.web.serve": 8, "wardrobe.web.common": 8,
    "wardrobe.web.clothes": 8, "wardrobe.web.model": 8, "wardrobe.web.health": 8, "wardrobe.web.settings_page": 8,
    "wardrobe.web.tls": 8, "wardrobe.web.server": 8,
}
TRAIN = 9
"""Every module of wardrobe.train: the companion script may use the whole runtime."""
PUBLISHED = 10
"""The published-method studies: they may use the training engine, which never imports them."""
ENTRY_TO_TRAIN = ("wardrobe.cli", "wardrobe.train.__main__")
"""The one allowed crossing: `wardrobe train ...` hands its arguments to the training script."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    if name.startswith("wardrobe.train.published"):
        return PUBLISHED
    if name.startswith("wardrobe.train"):
        return TRAIN
    return LAYERS[name]


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that a file imports (absolute or relative, anywhere in the file)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for n in names:
            # The longest known module this name starts with (from x import y: y may be a module or not).
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n not in (here, "wardrobe"):  # the package root holds only the version
                found.add(n)
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in files}
    return {module_name(p): imports(p, known) for p in files}


def test_every_runtime_module_has_a_layer():
    runtime = [m for m in graph() if not m.startswith("wardrobe.train")]
    assert sorted(set(runtime) - set(LAYERS)) == [], "add new modules to LAYERS (and to ARCHITECTURE.md)"


def upward(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports of a higher layer, except the command line handing `wardrobe train` to the training script."""
    return [(m, d) for m, deps in g.items() for d in sorted(deps)
            if layer(d) > layer(m) and not (m == ENTRY_TO_TRAIN[0] and d in (ENTRY_TO_TRAIN[1], "wardrobe.train"))]


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk meets, as the modules around it."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                found.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    return found


def test_no_upward_imports():
    assert upward(graph()) == []


def test_the_runtime_never_imports_training_code():
    wrong = [(m, d) for m, deps in graph().items() if not m.startswith("wardrobe.train") and m != ENTRY_TO_TRAIN[0]
             for d in deps if d.startswith("wardrobe.train")]
    assert wrong == []


def test_the_web_layer_reaches_neither_the_daemon_nor_the_command_line():
    """The page reads state through the lower modules; it loads no device and talks to no command."""
    wrong = [(m, d) for m, deps in graph().items() if m.startswith("wardrobe.web")
             for d in deps if d in ("wardrobe.cli", "wardrobe.daemon", "wardrobe.wiring", "wardrobe.pipeline",
                                    "wardrobe.classify", "wardrobe.speech", "wardrobe.camera", "wardrobe.audio")]
    assert wrong == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: a planted cycle and a planted upward import are found."""
    import tests.test_architecture as me

    pkg = tmp_path / "wardrobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "images.py").write_text("def f():\n    from wardrobe.cli import main\n")
    (pkg / "cli.py").write_text("from . import images\n")
    known = {"wardrobe", "wardrobe.images", "wardrobe.cli"}
    old, me.ROOT = me.ROOT, tmp_path
    try:
        g = {module_name(p): imports(p, known) for p in pkg.glob("*.py")}
    finally:
        me.ROOT = old
    assert cycles(g) == [["wardrobe.cli", "wardrobe.images", "wardrobe.cli"]]
    assert upward(g) == [("wardrobe.images", "wardrobe.cli")]
