"""Modules a person can hold in their head: no module over ``MAX_MODULE_LINES`` lines and no
function over ``MAX_FUNCTION_LINES`` lines in the package folders, unless it says why.

A module says why with a comment ``# long: <reason>`` in its header (before its first import or
definition); a function with ``# long: <reason>`` on its ``def`` line or the line above. Alembic
revisions (``core/migrations/versions``) are exempt: they are written once and never read
piecemeal. A function's length runs from its ``def`` line to its last line (decorators not
counted); nested functions and methods are measured on their own too.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "storage", "records", "search", "retention", "migrate", "api", "genpon_verify")
EXEMPT_DIRS = (ROOT / "core" / "migrations" / "versions",)
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
REASON = re.compile(r"#\s*long:\s*\S")

# Exceptions by name (fnmatch over "path" for a module, "path:Qualified.name" for a function);
# prefer a "# long: <reason>" comment in the code itself. Empty: nothing is excused.
KNOWN: frozenset[str] = frozenset()


def _known(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in KNOWN)


def _modules() -> list[Path]:
    files = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if any(path.is_relative_to(d) for d in EXEMPT_DIRS):
                continue
            files.append(path)
    return files


def _header_says_why(tree: ast.Module, lines: list[str]) -> bool:
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring is part of the header
    end = body[0].lineno - 1 if body else len(lines)
    return any(REASON.search(line) for line in lines[:end] if line.lstrip().startswith("#"))


def _functions(
    node: ast.AST, prefix: str = ""
) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append((prefix + child.name, child))
            found.extend(_functions(child, f"{prefix}{child.name}."))
        elif isinstance(child, ast.ClassDef):
            found.extend(_functions(child, f"{prefix}{child.name}."))
        else:
            found.extend(_functions(child, prefix))
    return found


def _def_says_why(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    candidates = [lines[fn.lineno - 1]]
    if fn.lineno >= 2:
        candidates.append(lines[fn.lineno - 2])
    return any(REASON.search(line) for line in candidates)


def oversized() -> list[str]:
    """Every module and function over the limits that neither says why nor is known."""
    problems = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, filename=rel)
        too_long = len(lines) > MAX_MODULE_LINES and not _header_says_why(tree, lines)
        if too_long and not _known(rel):
            problems.append(f"{rel}: {len(lines)} lines (max {MAX_MODULE_LINES})")
        for qualname, fn in _functions(tree):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length <= MAX_FUNCTION_LINES or _def_says_why(fn, lines):
                continue
            if not _known(f"{rel}:{qualname}"):
                problems.append(
                    f"{rel}:{fn.lineno} {qualname}: {length} lines (max {MAX_FUNCTION_LINES})"
                )
    return problems


def test_modules_and_functions_stay_small() -> None:
    problems = oversized()
    assert not problems, (
        "Split these, or say why on the def line / in the module header "
        "with '# long: <reason>':\n" + "\n".join(problems)
    )


def _check(source: str) -> list[str]:
    lines = source.splitlines()
    tree = ast.parse(source)
    out = []
    if len(lines) > MAX_MODULE_LINES and not _header_says_why(tree, lines):
        out.append("module")
    for qualname, fn in _functions(tree):
        length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        if length > MAX_FUNCTION_LINES and not _def_says_why(fn, lines):
            out.append(qualname)
    return out


def _function(name: str, body_lines: int, above: str = "", on_def: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"{above}def {name}() -> None:{on_def}\n{body}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (_function("short", MAX_FUNCTION_LINES - 1), []),
        (_function("long", MAX_FUNCTION_LINES), ["long"]),
        (_function("why", MAX_FUNCTION_LINES, above="# long: a table of cases\n"), []),
        (_function("why", MAX_FUNCTION_LINES, on_def="  # long: one state machine"), []),
        (_function("bare", MAX_FUNCTION_LINES, above="# long:\n"), ["bare"]),
        (
            "class C:\n" + "\n".join("    " + ln for ln in _function("m", 90).splitlines()),
            ["C.m"],
        ),
        ('"""Doc."""\n' + "x = 1\n" * MAX_MODULE_LINES, ["module"]),
        ('"""Doc."""\n# long: generated table\n' + "x = 1\n" * MAX_MODULE_LINES, []),
    ],
)
def test_the_check_itself(source: str, expected: list[str]) -> None:
    assert _check(source) == expected
