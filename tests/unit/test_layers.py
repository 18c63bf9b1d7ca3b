"""The direction of imports the design sets: pure domain and mapping, pymongo only in store."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fhir_iomt"


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def _modules_importing(name):
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if name in set(_imports(path))
    }


def test_only_the_store_imports_pymongo():
    assert {m for m in _modules_importing("pymongo") if not m.startswith("store/")} == set()


def test_domain_mapping_and_fhir_helpers_import_no_web_framework():
    pure = ("domain/", "mapping/", "fhir/")
    offenders = {m for m in _modules_importing("flask") | _modules_importing("flask_smorest") if m.startswith(pure)}
    assert offenders == set()


def test_importing_the_mapping_pipeline_loads_neither_flask_nor_pymongo():
    code = (
        "import sys, fhir_iomt.mapping.device_templates, fhir_iomt.mapping.fhir_templates, "
        "fhir_iomt.mapping.group, fhir_iomt.mapping.to_fhir, fhir_iomt.domain.measurement; "
        "print(sorted(m for m in ('flask', 'pymongo') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
