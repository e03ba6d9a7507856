"""Architecture rules that import-linter cannot express, read from the source's syntax tree.

The layer contracts themselves are ``[tool.importlinter]`` in pyproject.toml (``lint-imports``
in scripts/test).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# folders installed as genpon.<folder>, and the standalone verifier
PACKAGES = ("core", "storage", "records", "search", "retention", "migrate", "api", "genpon_verify")
# the composition root (api) and the settings' own home (core) may read the process settings
MAY_FETCH_SETTINGS = ("core", "api")


def _modules(*folders: str) -> Iterator[tuple[str, ast.Module]]:
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _settings_fetches(tree: ast.Module) -> list[int]:
    """Lines that import or name ``get_settings`` (a call, an alias, an attribute access)."""
    lines = []
    for node in ast.walk(tree):
        if (
            (isinstance(node, ast.ImportFrom) and any(a.name == "get_settings" for a in node.names))
            or (isinstance(node, ast.Name) and node.id == "get_settings")
            or (isinstance(node, ast.Attribute) and node.attr == "get_settings")
        ):
            lines.append(node.lineno)
    return lines


def test_domain_code_is_passed_settings_and_never_fetches_them() -> None:
    domain = [p for p in PACKAGES if p not in MAY_FETCH_SETTINGS]
    found = {rel: lines for rel, tree in _modules(*domain) if (lines := _settings_fetches(tree))}
    assert found == {}, "get_settings() outside api/ and core/: pass settings from the caller"


def test_the_rule_finds_every_form_of_fetching() -> None:
    sources = [
        "from genpon.core.settings import get_settings\n",
        "from genpon.core import settings\ntz = settings.get_settings().timezone\n",
        "def f(s=None):\n    import genpon.core.settings as m\n    return s or m.get_settings()\n",
    ]
    assert all(_settings_fetches(ast.parse(src)) for src in sources)
    assert not _settings_fetches(ast.parse("def f(settings):\n    return settings.timezone\n"))


def _canonical_json_calls(tree: ast.Module) -> list[int]:
    """``json.dumps(..., sort_keys=True, separators=(",", ":"))``: the canonical form."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "dumps":
            continue
        kw = {k.arg: k.value for k in node.keywords}
        sep = kw.get("separators")
        compact = isinstance(sep, ast.Tuple) and [
            e.value for e in sep.elts if isinstance(e, ast.Constant)
        ] == [",", ":"]
        sort = isinstance(kw.get("sort_keys"), ast.Constant) and kw["sort_keys"].value is True
        if compact and sort:
            lines.append(node.lineno)
    return lines


def test_canonical_json_for_hashing_and_signing_exists_once() -> None:
    """genpon_verify.canonical is the one copy; the server imports it."""
    allowed = {
        "genpon_verify/canonical.py",
        # the export's line layout (events.jsonl); the verifier re-hashes every line itself
        "records/audit/export.py",
    }
    found = {
        rel: lines
        for rel, tree in _modules(*PACKAGES)
        if rel not in allowed and (lines := _canonical_json_calls(tree))
    }
    assert found == {}, "canonical JSON re-implemented: use genpon_verify.canonical"
    assert _canonical_json_calls(ast.parse((REPO / "genpon_verify/canonical.py").read_text()))
