"""The package's shape stays what issue 22 asked for: no import circles between modules (imports
inside functions and under TYPE_CHECKING count too), no underscore name imported from another
module, no module over 500 lines, no function over 80 lines. Read with `ast`, nothing imported."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pipeline_kit

MODULE_LINES, FUNCTION_LINES = 500, 80
PACKAGE = Path(pipeline_kit.__file__).parent


@dataclass
class Shape:
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> the package's modules it imports
    private: list[str] = field(default_factory=list)
    big: list[str] = field(default_factory=list)
    long: list[str] = field(default_factory=list)

    def circles(self) -> list[list[str]]:
        """Each set of modules that import one another, directly or through others."""
        reach = {module: self._reachable(module) for module in self.imports}
        found: dict[frozenset[str], None] = {}
        for module, reached in reach.items():
            if module in reached:
                found[frozenset(other for other in reached if module in reach.get(other, ()))] = None
        return sorted(sorted(circle) for circle in found)

    def _reachable(self, start: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.imports.get(start, ()))
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack.extend(self.imports.get(module, ()))
        return seen


def modules(root: Path) -> dict[str, Path]:
    """Every module under `root` by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def shape(root: Path) -> Shape:
    mods = modules(root)
    result = Shape()

    def owner(name: str) -> str | None:
        """The module that defines `name` (a module, or a name in one)."""
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    for module, path in mods.items():
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MODULE_LINES:
            result.big.append(f"{path.relative_to(root.parent)}: {lines} lines")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported = result.imports.setdefault(module, set())
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    result.long.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}: {length} lines")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                if base != root.name and not base.startswith(root.name + "."):
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    target = owner(full if full in mods else base)
                    if target is None or target == module:
                        continue
                    imported.add(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        result.private.append(f"{path.relative_to(root.parent)}:{node.lineno} imports {full}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == root.name or alias.name.startswith(root.name + "."):
                        target = owner(alias.name)
                        if target is not None and target != module:
                            imported.add(target)
    return result


def test_no_import_circles() -> None:
    assert shape(PACKAGE).circles() == []


def test_no_private_imports() -> None:
    assert shape(PACKAGE).private == []


def test_no_module_over_500_lines() -> None:
    assert shape(PACKAGE).big == []


def test_no_function_over_80_lines() -> None:
    assert shape(PACKAGE).long == []


def test_the_shape_check_sees_what_it_must(tmp_path: Path) -> None:
    """The oracle: a package with each fault has it found (the checks above are not vacuous)."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from pkg.sub.b import thing\n")
    (root / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.sub import thing\n"
        "def f():\n    from . import c\n" + "    x = 1\n" * 79
    )
    (root / "sub" / "b.py").write_text("def g():\n    import pkg.a\n\nthing = 1\n")
    (root / "c.py").write_text("from pkg.e import _hidden, __version__\n" + "y = 1\n" * 500)
    (root / "e.py").write_text("_hidden = __version__ = 1\n")
    (root / "d.py").write_text("from .sub import b\nfrom pkg import c\n")
    found = shape(root)
    assert found.circles() == [["pkg.a", "pkg.sub", "pkg.sub.b"]]
    assert found.imports["pkg.d"] == {"pkg.sub.b", "pkg.c"}
    assert found.private == ["pkg/c.py:1 imports pkg.e._hidden"]
    assert found.big == ["pkg/c.py: 501 lines"]
    assert found.long == ["pkg/a.py:4 f: 81 lines"]
