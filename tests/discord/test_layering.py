"""The Discord layer stays thin: no SQL, torch, storage, worker or file access of its own, and it
reaches the services only through ``bot.services.api``."""

import ast
from pathlib import Path

import bot.discord

FORBIDDEN_ROOTS = {
    "torch",
    "transformers",
    "sqlalchemy",
    "sqlmodel",
    "storage",
    "personalization",
    "apscheduler",
}
FORBIDDEN_CALLS = {
    "open",
    "remove",
    "unlink",
    "rmtree",
    "write_bytes",
    "write_text",
    "read_bytes",
    "read_text",
}
PACKAGE = Path(bot.discord.__file__).parent


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def reads_memory(call: ast.Call) -> bool:
    """``Image.open(io.BytesIO(...))``: decoding bytes already in memory is not file I/O."""
    first = call.args[0] if call.args else None
    return (
        isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute) and first.func.attr == "BytesIO"
    )


def test_no_forbidden_imports_or_file_calls() -> None:
    problems = []
    for path in modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root in FORBIDDEN_ROOTS or root == "pathlib":
                    problems.append(f"{path.name}: imports {name}")
                if name.startswith("bot.") and not name.startswith(("bot.discord", "bot.services.api")):
                    problems.append(f"{path.name}: imports {name} (use bot.services.api)")
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in FORBIDDEN_CALLS and not reads_memory(node):
                    problems.append(f"{path.name}:{node.lineno}: calls {called}()")
    assert problems == []
    assert len(modules()) >= 10
