"""The layout's rules, read from the source with ast (nothing is imported): packages, imports, sizes, docstrings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
PIPELINES = {"prompted", "openvocab", "video"}
# The one crossing allowed: video's keyframe detector is MHQR and its class evidence is the dense CLIP features
# (the video issue builds on MHQR). Never the other way.
PIPELINE_CROSSINGS = {("video", "openvocab")}
SHARED = {"models", "data", "metrics", "results", "draw"}
# What each shared package must never import (besides gradio, demo and bench, which no core module may import).
NEVER = {
    "models": PIPELINES | {"results", "draw", "data", "metrics"},
    "data": PIPELINES | {"results", "draw", "metrics"},
    "metrics": PIPELINES | {"models", "results", "draw", "data"},
    "results": PIPELINES | {"models", "draw", "data"},
    "draw": PIPELINES | {"models", "results", "data", "metrics"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(folder: Path) -> dict[str, Path]:
    return {module_name(f): f for f in sorted(folder.rglob("*.py")) if "__pycache__" not in f.parts}


CORE_MODULES = modules(CORE)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import, at any depth (lazy ones too)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                me = module_name(path)
                package = me if path.name == "__init__.py" else me.rpartition(".")[0]
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            found.append((base, [a.name for a in node.names], node.lineno))
    return found


def target_module(name: str, names: list[str]) -> list[str]:
    """The core modules an import statement loads (a `from pkg import mod` loads pkg.mod too)."""
    out = []
    for candidate in [name] + [f"{name}.{n}" for n in names]:
        x = candidate
        while x and x not in CORE_MODULES:
            x = x.rpartition(".")[0]
        if x:
            out.append(x)
    return out


def graph() -> dict[str, set[str]]:
    g = {m: set() for m in CORE_MODULES}
    for m, f in CORE_MODULES.items():
        for name, names, _ in imports(f):
            for t in target_module(name, names):
                if t != m:
                    g[m].add(t)
    return g


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for x in sorted(g[m]):
            if state.get(x) == 1 and not x.startswith(m + "."):  # a package loading its own modules is no cycle
                cycles.append(stack[stack.index(x):] + [x])
            elif x not in state:
                visit(x)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    return cycles


def top_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (CORE / parts[1]).is_dir()) else None


def public_entries(package: str) -> tuple[set[str], str]:
    """What a package exports: its __init__'s __all__, and the modules its docstring names."""
    init = CORE / Path(*package.split(".")[1:]) / "__init__.py"
    tree = ast.parse(init.read_text())
    exported = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            exported = set(ast.literal_eval(node.value))
    return exported, ast.get_docstring(tree) or ""


def test_cycle_finder_sees_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"core.p": {"core.p.x"}, "core.p.x": {"core.p"}}) != []  # back into its own package
    assert find_cycles({"core.p": {"core.p.x"}, "core.p.x": set()}) == []


def test_no_import_cycles_in_core():
    assert find_cycles(graph()) == []


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_core_never_imports_ui_demo_or_bench(module):
    for name, _, line in imports(CORE_MODULES[module]):
        root = name.split(".")[0]
        assert root not in {"gradio", "gradio_client", "demo", "bench", "app"}, f"{module}:{line} imports {name}"


def test_pipelines_and_shared_packages_keep_their_direction():
    bad = []
    for m, f in CORE_MODULES.items():
        mine = top_package(m)
        if mine is None:
            continue
        for name, names, line in imports(f):
            for t in target_module(name, names):
                theirs = top_package(t)
                if theirs is None or theirs == mine:
                    continue
                if mine in PIPELINES and theirs in PIPELINES and (mine, theirs) not in PIPELINE_CROSSINGS:
                    bad.append(f"{m}:{line} crosses pipelines into {t}")
                if theirs in NEVER.get(mine, set()):
                    bad.append(f"{m}:{line} imports {t}, which {mine}/ must never import")
    assert bad == []


def enclosing_docs(module: str) -> str:
    """The docstrings of every package that encloses a module (core.data.synthetic.walls: data and synthetic)."""
    parts = module.split(".")
    return "\n".join(public_entries(".".join(parts[:i]))[1] for i in range(2, len(parts))
                     if (CORE / Path(*parts[1:i]) / "__init__.py").is_file())


def entry_problems(files: dict[str, Path]) -> list[str]:
    bad = []
    for m, f in files.items():
        for name, names, line in imports(f):
            theirs = top_package(name) if name.startswith("core.") else None
            if theirs is None or m == f"core.{theirs}" or m.startswith(f"core.{theirs}."):
                continue
            if (CORE / Path(*name.split(".")[1:])).is_dir():  # from core.pkg import X
                exported, doc = public_entries(name)
                docs = doc + enclosing_docs(name)
                bad += [f"{m}:{line} takes {n} from {name}, which does not export it"
                        for n in names if n not in exported and not re.search(rf"\b{re.escape(name)}\.{n}\b", docs)]
            elif not re.search(rf"\b{re.escape(name)}\b", enclosing_docs(name)):  # from core.pkg.module import X
                bad.append(f"{m}:{line} imports {name}, which its package's docstring does not name as an entry")
    return bad


def test_entry_check_flags_what_a_package_does_not_offer(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from core.models import registry\nfrom core.prompted.segmenter import load_segmenter\n"
                     "from core.prompted.train_data import PairSource\nfrom core.models import Nope\n")
    problems = entry_problems({"demo.probe": probe})
    assert len(problems) == 2 and "train_data" in problems[0] and "Nope" in problems[1]


@pytest.mark.parametrize("where", ["core", "demo", "app"])
def test_packages_are_entered_only_through_their_public_entries(where):
    files = CORE_MODULES if where == "core" else (
        modules(ROOT / "demo") if where == "demo" else {"app": ROOT / "app.py"})
    assert entry_problems(files) == []


PACKAGES = sorted(f.parent for f in CORE.rglob("__init__.py") if "__pycache__" not in f.parts)


@pytest.mark.parametrize("init", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_package_opens_with_a_short_docstring(init):
    tree = ast.parse((init / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc, f"{init} has no docstring"
    assert tree.body and isinstance(tree.body[0], ast.Expr), "the docstring opens the file"
    assert 3 <= len(doc.strip().splitlines()) <= 6, doc
    assert "entry point" in doc.lower(), "says its entry points"
    assert "never import" in doc.lower(), "says what it must never import"


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")) + sorted((ROOT / "demo").rglob("*.py")) + [ROOT / "app.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_small_and_named_for_what_they_hold(path):
    assert len(path.read_text().splitlines()) <= 400
    assert path.stem not in {"utils", "util", "helpers", "misc", "common_utils"}


def test_core_top_level_holds_only_the_cli_and_errors():
    loose = sorted(f.name for f in CORE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py", "errors.py"]
