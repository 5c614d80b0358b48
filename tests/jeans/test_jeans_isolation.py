"""gcsbi.jeans must not import any other gcsbi module (it is packaged on its own)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import gcsbi.jeans

JEANS_DIR = Path(gcsbi.jeans.__file__).parent
SUBMODULES = sorted(p.stem for p in JEANS_DIR.glob("*.py") if p.stem != "__init__")


def test_import_loads_no_other_gcsbi_module():
    code = (
        "import sys, json, importlib\n"
        "import gcsbi\n"  # the parent package's own __init__ is outside gcsbi.jeans
        "before = {m for m in sys.modules if m.startswith('gcsbi')}\n"
        f"for name in {SUBMODULES!r}:\n"
        "    importlib.import_module('gcsbi.jeans.' + name)\n"
        "after = {m for m in sys.modules if m.startswith('gcsbi')}\n"
        "print(json.dumps(sorted(after - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert "gcsbi.jeans.cli" in new and "gcsbi.jeans.flows" in new  # the check saw the modules load
    others = [m for m in new if not (m == "gcsbi.jeans" or m.startswith("gcsbi.jeans."))]
    assert others == []


def test_sources_have_no_imports_outside_the_package():
    bad = []
    for path in JEANS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level >= 2 or (node.level == 0 and mod.startswith("gcsbi") and not mod.startswith("gcsbi.jeans")):
                    bad.append(f"{path.name}: from {'.' * node.level}{mod}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.name}: import {a.name}" for a in node.names
                        if a.name.startswith("gcsbi") and not a.name.startswith("gcsbi.jeans")]
    assert bad == []


def test_errors_are_builtin_subclasses():
    from gcsbi.jeans.errors import JeansError, JeansFileError, JeansValueError

    assert issubclass(JeansValueError, ValueError) and issubclass(JeansValueError, JeansError)
    assert issubclass(JeansFileError, OSError) and issubclass(JeansFileError, JeansError)
