"""Issue 21: the clinician-facing English lives in one module, ``rules/wording.py``.

A rules module other than wording.py may not hold prose: an f-string or a string literal that contains a
space and is longer than about 40 characters or has two words of three letters or more (a fragment such
as "portal invasion" is wording too). Docstrings and exception messages (``raise``: programming errors, for developers) are allowed; ``criteria.py`` and ``knowledge.py``
are exempt because their long strings are configuration error messages for whoever edits the knowledge
files, not sentences said to a clinician.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rules

RULES_DIR = Path(rules.__file__).parent
EXEMPT = {"wording.py", "criteria.py", "knowledge.py"}
MODULES = sorted(p for p in RULES_DIR.glob("*.py") if p.name not in EXEMPT)
MAX_CHARS = 40

# (module, literal text) pairs that may stay where they are; each says why. Keep it small.
ALLOWED: set[tuple[str, str]] = set()


def _in_raise(tree: ast.AST) -> set[int]:
    """Exception messages are for developers (a programming error), not sentences said to a clinician."""
    return {id(n) for r in ast.walk(tree) if isinstance(r, ast.Raise) for n in ast.walk(r)}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def _literal_text(node: ast.JoinedStr) -> str:
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def prose_in(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstring_nodes(tree) | _in_raise(tree)
    inside_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and id(node) not in docstrings:
            text = _literal_text(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and id(node) not in inside_fstrings:
            text = node.value
        else:
            continue
        is_prose = " " in text and (len(text) > MAX_CHARS or _has_words(text))
        if is_prose and (path.name, text) not in ALLOWED:
            found.append((node.lineno, text))
    return sorted(found)


def _has_words(text: str) -> bool:
    """Two or more words of three letters or more (placeholders aside) make a phrase, however short."""
    words = [w for w in text.replace("{}", " ").split() if sum(c.isalpha() for c in w) >= 3]
    return len(words) >= 2


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_clinician_wording_outside_the_wording_module(path):
    assert prose_in(path) == [], f"{path.name}: move these phrases to rules/wording.py"


def test_the_wording_module_exists_and_holds_the_phrases():
    assert (RULES_DIR / "wording.py").is_file()
