"""The vendors' wire protocol stands apart from Airflow.

Each module in ``airflow_provider_ledgerlink/protocol/`` imports without Airflow installed, imports
nothing from Airflow or from the hooks, operators, sensors and triggers, and the hook modules still
offer every name they re-export from it.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_ledgerlink.protocol as protocol_package

PROTOCOL_DIR = Path(protocol_package.__file__).parent
VENDORS = sorted(p.stem for p in PROTOCOL_DIR.glob("*.py") if p.stem != "__init__")
EXPECTED_VENDORS = ["afas", "alasco", "cash", "cloudpos", "tripletex"]
FORBIDDEN = (
    "airflow",
    "airflow_provider_ledgerlink.hooks",
    "airflow_provider_ledgerlink.operators",
    "airflow_provider_ledgerlink.sensors",
    "airflow_provider_ledgerlink.triggers",
)

# Run in a fresh interpreter where ``import airflow`` (and every ``airflow.*``) fails, as on a machine
# without Airflow. Prints which protocol modules imported, and every airflow module that got loaded.
_WITHOUT_AIRFLOW = """
import importlib, importlib.abc, json, sys

class NoAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAirflow())
for name in list(sys.modules):
    if name == "airflow" or name.startswith("airflow."):
        del sys.modules[name]

imported = []
for vendor in json.loads(sys.argv[1]):
    module = importlib.import_module(f"airflow_provider_ledgerlink.protocol.{vendor}")
    imported.append(module.__name__)
from airflow_provider_ledgerlink.core.errors import LedgerLinkError
print(json.dumps({
    "imported": imported,
    "airflow_loaded": sorted(n for n in sys.modules if n == "airflow" or n.startswith("airflow.")),
    "hooks_loaded": sorted(n for n in sys.modules if n.startswith(("airflow_provider_ledgerlink.hooks",
        "airflow_provider_ledgerlink.operators", "airflow_provider_ledgerlink.sensors",
        "airflow_provider_ledgerlink.triggers"))),
    "error_bases": [c.__name__ for c in LedgerLinkError.__mro__],
}))
"""


def test_there_is_one_protocol_module_per_vendor() -> None:
    assert VENDORS == EXPECTED_VENDORS


def test_every_protocol_module_imports_without_airflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AIRFLOW, json.dumps(VENDORS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] == [f"airflow_provider_ledgerlink.protocol.{v}" for v in VENDORS]
    assert report["airflow_loaded"] == []
    assert report["hooks_loaded"] == []
    # Without Airflow the errors are plain exceptions (with Airflow they are AirflowException).
    assert report["error_bases"][:2] == ["LedgerLinkError", "Exception"]


def test_with_airflow_the_errors_are_airflow_exceptions() -> None:
    from airflow_provider_ledgerlink.core.compat import AirflowException
    from airflow_provider_ledgerlink.core.errors import LedgerLinkError

    assert issubclass(LedgerLinkError, AirflowException)


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the protocol package
                package = ["airflow_provider_ledgerlink", "protocol"][: 3 - node.level]
                base = ".".join([*package, base]) if base else ".".join(package)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_protocol_module_imports_nothing_from_airflow_or_the_airflow_layers(vendor: str) -> None:
    imported = _imported_modules(PROTOCOL_DIR / f"{vendor}.py")
    assert imported, "the AST walk found no imports at all"
    offending = [name for name in imported if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert offending == []


def test_the_forbidden_import_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import airflow.sdk\nfrom airflow_provider_ledgerlink.hooks.cash import CashHook\n"
        "from ..triggers import cash\n",
        encoding="utf-8",
    )
    imported = _imported_modules(sample)
    assert "airflow.sdk" in imported
    assert "airflow_provider_ledgerlink.hooks.cash" in imported
    assert "airflow_provider_ledgerlink.triggers.cash" in imported


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_hook_module_re_exports_the_protocol_names(vendor: str) -> None:
    protocol = importlib.import_module(f"airflow_provider_ledgerlink.protocol.{vendor}")
    hook_module = importlib.import_module(f"airflow_provider_ledgerlink.hooks.{vendor}")
    public = {name for name in _top_level_names(PROTOCOL_DIR / f"{vendor}.py") if not name.startswith("_")}
    assert public, "the protocol module defines nothing public"
    reexported = set(hook_module.__all__)
    missing = sorted(public - reexported)
    assert missing == []
    for name in public:
        assert getattr(hook_module, name) is getattr(protocol, name)


def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(e.id for e in elements if isinstance(e, ast.Name))
    return names
