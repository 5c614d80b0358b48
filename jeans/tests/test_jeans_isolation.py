"""gcsbi-jeans is its own distribution: it imports nothing from gcsbi and none of the image stack; and only its
JFlow route (``gcsbi_jeans.jflow``) loads torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import gcsbi_jeans

JEANS_DIR = Path(gcsbi_jeans.__file__).parent
SOURCES = sorted(JEANS_DIR.rglob("*.py"))
#: every module and subpackage, dotted below gcsbi_jeans ('core.io', 'jflow', ...)
SUBMODULES = sorted(".".join(p.relative_to(JEANS_DIR).with_suffix("").parts).removesuffix(".__init__")
                    for p in SOURCES if p != JEANS_DIR / "__init__.py")
#: what loads torch (and torchdiffeq): the JFlow route's modules, but not its settings
TORCH = {"torch", "torchdiffeq"}
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
    for path in SOURCES:
        depth = len(path.relative_to(JEANS_DIR).parts)  # 1: gcsbi_jeans/x.py, 2: gcsbi_jeans/core/x.py
        name = str(path.relative_to(JEANS_DIR))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level > depth or (node.level == 0 and mod.split(".")[0] in IMAGE_STACK):
                    bad.append(f"{name}: from {'.' * node.level}{mod}")
            elif isinstance(node, ast.Import):
                bad += [f"{name}: import {a.name}" for a in node.names if a.name.split(".")[0] in IMAGE_STACK]
    assert bad == []
    assert {"core.io", "freeform.model", "jflow.fit", "baseline.model", "cli"} <= set(SUBMODULES)


def _loaded_after(code: str) -> set[str]:
    run = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_numpy_routes_never_load_torch():
    """The package, core, the free-form and baseline routes, the CLI (parser included) and every public name
    outside JFlow's models import no torch; JFlow's modules do."""
    numpy_modules = [m for m in SUBMODULES if not m.startswith("jflow") or m == "jflow.config"]
    public = [n for n in gcsbi_jeans.__all__ if not gcsbi_jeans._WHERE[n].startswith("jflow")
              or gcsbi_jeans._WHERE[n] == "jflow.config"]
    top = _loaded_after(
        "import importlib, gcsbi_jeans, gcsbi_jeans.cli\n"
        f"for name in {numpy_modules!r}:\n"
        "    importlib.import_module('gcsbi_jeans.' + name)\n"
        f"for name in {public!r}:\n"
        "    getattr(gcsbi_jeans, name)\n"
        "gcsbi_jeans.cli.build_parser()\n")
    assert {"gcsbi_jeans", "numpy", "emcee", "scipy"} <= top and not top & TORCH
    assert "torch" in _loaded_after("import gcsbi_jeans.jflow.fit")


def test_freeform_fit_from_the_cli_never_loads_torch(tmp_path):
    """A whole free-form fit and a parametric baseline run, from the command line, in a fresh process."""
    table = tmp_path / "mock.txt"
    top = _loaded_after(
        "from gcsbi_jeans.cli import main\n"
        f"assert main(['mock', '--n', '80', '--seed', '3', '--out', {str(table)!r}]) == 0\n"
        f"assert main(['fit', {str(table)!r}, '--walkers', '24', '--steps', '40', '--no-converge', '--nodes', '4', "
        f"'--out', {str(tmp_path / 'ff')!r}, '--no-progress']) == 0\n"
        f"assert main(['baseline', {str(table)!r}, '--walkers', '8', '--steps', '12', '--burn', '4', '--thin', '2', "
        f"'--out', {str(tmp_path / 'base')!r}, '--no-progress']) == 0\n")
    assert (tmp_path / "ff" / "summary.json").is_file() and (tmp_path / "base" / "summary.json").is_file()
    assert {"emcee", "galpy", "matplotlib"} <= top and not top & TORCH


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


def test_photometry_with_the_plummer_option_or_a_cached_cnf_never_loads_torch(tmp_path):
    """With --photometry, the default Plummer light and a CNF ensemble read from the cache (--light-model cnf)
    run the whole free-form fit without torch."""
    table, phot, cache = tmp_path / "mock.txt", tmp_path / "phot.txt", tmp_path / "cache"
    top = _loaded_after(
        "import math, os, numpy as np\n"
        f"os.environ['GCSBI_JEANS_CACHE'] = {str(cache)!r}\n"
        "from gcsbi_jeans.cli import main\n"
        "from gcsbi_jeans.core.mocks import plummer_positions\n"
        "from gcsbi_jeans.core.light import LightProfile, read_photometry\n"
        "from gcsbi_jeans.core.light_cache import cache_folder, cache_key, save_ensemble\n"
        "from gcsbi_jeans.core.light_table import LightEnsemble, TabulatedLight\n"
        "from gcsbi_jeans.jflow.config import LightConfig\n"
        f"assert main(['mock', '--n', '80', '--seed', '3', '--out', {str(table)!r}]) == 0\n"
        "R = plummer_positions(400, 0.25, seed=2)\n"
        f"np.savetxt({str(phot)!r}, np.column_stack([R, np.ones_like(R)]), header='R p')\n"
        f"common = ['--walkers', '24', '--steps', '40', '--no-converge', '--nodes', '4', '--photometry', {str(phot)!r}, "
        "'--no-progress']\n"
        f"assert main(['fit', {str(table)!r}, *common, '--out', {str(tmp_path / 'pl')!r}]) == 0\n"
        f"Rp, wp = read_photometry({str(phot)!r})\n"
        "key = cache_key(Rp, wp, LightConfig().fit_settings(), R_max=None, seed=0)\n"
        "lr = np.linspace(math.log(0.25e-3), math.log(250.0), 241)\n"
        "tabs = tuple(TabulatedLight(lr, np.log(LightProfile((a,), (1.0,)).density(np.exp(lr)))) for a in (0.24, 0.26))\n"
        "save_ensemble(cache_folder(create=True), key, LightEnsemble(tabs))\n"
        f"assert main(['fit', {str(table)!r}, *common, '--light-model', 'cnf', '--out', {str(tmp_path / 'cnf')!r}]) == 0\n")
    assert not top & TORCH
    import json as _json

    summary = _json.loads((tmp_path / "cnf" / "summary.json").read_text())
    assert summary["light"]["kind"] == "cnf_ensemble" and summary["light"]["cache"] == "hit"
    assert _json.loads((tmp_path / "pl" / "summary.json").read_text())["light"]["kind"] == "plummer_sum"
