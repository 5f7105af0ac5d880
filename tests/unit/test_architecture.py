"""The map in docs/architecture.md, held against the code: which package may import
which, where the one commit is, and that views write no audit rows."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "supporters"
#: modules whose names say they hold pages (public or staff)
PAGE_MODULES = ("views.py", "webhook.py", "test_payment.py", "sign_in.py")
#: the edges that commit: the request's one commit point, the CLI and the mail worker
COMMITTING = {
    "lib/transactions.py",
    "cli.py",
    "articles/cli.py",
    "bank/cli.py",
    "privacy/cli.py",
    "imports/cli.py",
    "mail/cli.py",
    "mail/outbox.py",
    "widget/counts.py",
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path))


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_page(name: str) -> bool:
    leaf = name.rsplit("/", 1)[-1]
    return leaf in PAGE_MODULES or leaf.startswith("staff_")


def calls(tree: ast.Module, attribute: str) -> list[int]:
    """Line numbers of calls to `<something>.<attribute>(…)`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute
    ]


def test_the_map_finds_the_packages_it_describes() -> None:
    names = {name for name, _tree in modules()}
    for expected in ("lib/transactions.py", "giving/totals.py", "dashboard/access.py", "payments/base.py"):
        assert expected in names


def test_lib_imports_no_domain_package() -> None:
    allowed = ("supporters.lib", "supporters.models", "supporters.extensions")
    for name, tree in modules():
        if name.startswith("lib/"):
            ours = {module for module in imported(tree) if module.startswith("supporters")}
            assert all(module.startswith(allowed) for module in ours), (name, ours)


def test_models_import_only_models() -> None:
    for name, tree in modules():
        if name.startswith("models/"):
            ours = {module for module in imported(tree) if module.startswith("supporters")}
            assert all(module.startswith("supporters.models") for module in ours), (name, ours)


def test_only_the_payments_package_imports_stripe() -> None:
    importers = [name for name, tree in modules() if any(m.split(".")[0] == "stripe" for m in imported(tree))]
    assert importers and all(name.startswith("payments/") for name in importers), importers


def test_only_the_dashboard_shell_imports_staff_pages() -> None:
    importers = {
        name
        for name, tree in modules()
        if any(
            module.rsplit(".", 1)[-1].startswith("staff_")
            and module.startswith("supporters.")
            and (PACKAGE.parent / (module.replace(".", "/") + ".py")).exists()
            for module in imported(tree)
        )
        and not name.rsplit("/", 1)[-1].startswith("staff_")
    }
    assert importers == {"dashboard/views.py"}


def test_no_module_imports_another_domains_pages() -> None:
    """Pages are reached through their blueprints: only the factory and the dashboard
    shell import page modules of other packages."""
    mounting = {"__init__.py", "dashboard/views.py"}
    for name, tree in modules():
        domain = name.split("/", 1)[0]
        for module in imported(tree):
            parts = module.split(".")
            if len(parts) == 3 and parts[0] == "supporters" and is_page(parts[2] + ".py") and name not in mounting:
                assert parts[1] == domain, (name, module)


@pytest.mark.parametrize("method", ["commit", "rollback"])
def test_only_the_edges_commit_or_roll_back(method: str) -> None:
    found = {
        name
        for name, tree in modules()
        if any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "session"
            for node in ast.walk(tree)
        )
    }
    # core/errors.py: the error handlers roll back before they render (the session may be broken)
    assert found <= COMMITTING | {"core/errors.py"}, found - COMMITTING
    assert "lib/transactions.py" in found or method == "rollback"


def test_views_write_no_audit_rows() -> None:
    writers = {name for name, tree in modules() if calls(tree, "record") and "audit" in imported_names(tree)}
    assert writers, "the rule found no audit writers at all"
    assert not {name for name in writers if is_page(name)}, writers


def imported_names(tree: ast.Module) -> set[str]:
    return {module.rsplit(".", 1)[-1] for module in imported(tree)}
