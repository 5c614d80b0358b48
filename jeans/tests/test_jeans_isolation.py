"""gcsbi-jeans is its own distribution: it imports nothing from gcsbi and none of the image stack."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import gcsbi_jeans

JEANS_DIR = Path(gcsbi_jeans.__file__).parent
SUBMODULES = sorted(p.stem for p in JEANS_DIR.glob("*.py") if p.stem != "__init__")
IMAGE_STACK = ("gcsbi", "sbi", "galsim", "nflows", "zuko", "reproject", "dask", "sedpy", "limepy", "lachesis")


def test_import_loads_no_gcsbi_and_no_image_stack():
    code = (
        "import sys, json, importlib\n"
        f"for name in {SUBMODULES!r}:\n"
        "    importlib.import_module('gcsbi_jeans.' + name)\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    top = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"gcsbi_jeans", "torch", "emcee"} <= top  # the check saw the modules load
    assert sorted(top & set(IMAGE_STACK)) == []


def test_sources_have_no_imports_outside_the_package():
    bad = []
    for path in JEANS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level >= 2 or (node.level == 0 and mod.split(".")[0] in IMAGE_STACK):
                    bad.append(f"{path.name}: from {'.' * node.level}{mod}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.name}: import {a.name}" for a in node.names if a.name.split(".")[0] in IMAGE_STACK]
    assert bad == []


def test_distribution_declares_its_own_dependencies_and_command():
    meta = tomllib.loads((JEANS_DIR.parent / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for d in meta["dependencies"]}
    assert {"torch", "torchdiffeq", "emcee", "galpy", "arviz-base"} <= names
    assert not names & {"gcsbi", "sbi", "galsim", "astropy", "nflows", "zuko"}
    assert meta["scripts"]["gcsbi-jeans"] == "gcsbi_jeans.cli:main"


def test_errors_are_builtin_subclasses():
    from gcsbi_jeans.errors import JeansError, JeansFileError, JeansValueError

    assert issubclass(JeansValueError, ValueError) and issubclass(JeansValueError, JeansError)
    assert issubclass(JeansFileError, OSError) and issubclass(JeansFileError, JeansError)
