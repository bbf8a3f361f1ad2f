"""SECURITY.md and the tests agree: every test it names exists, and every adversarial test is named in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MD = ROOT / "SECURITY.md"
HERE = Path(__file__).resolve().parent
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)")


def functions_named_test(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def named_in_security_md() -> set[tuple[str, str]]:
    return set(NAMED.findall(SECURITY_MD.read_text(encoding="utf-8")))


def test_every_test_named_in_security_md_exists():
    named = named_in_security_md()
    assert len(named) >= 50, "SECURITY.md names too few tests: has its table format changed?"
    missing = []
    for file, name in sorted(named):
        path = ROOT / file
        if not path.is_file() or name not in functions_named_test(path):
            missing.append(f"{file}::{name}")
    assert not missing, "SECURITY.md names tests that do not exist:\n" + "\n".join(missing)


def test_every_adversarial_test_is_named_in_security_md():
    named = named_in_security_md()
    unnamed = [
        f"{path.relative_to(ROOT)}::{name}"
        for path in sorted(HERE.glob("test_*.py"))
        for name in sorted(functions_named_test(path))
        if (str(path.relative_to(ROOT)), name) not in named
    ]
    assert not unnamed, "adversarial tests missing from SECURITY.md's tables:\n" + "\n".join(unnamed)
