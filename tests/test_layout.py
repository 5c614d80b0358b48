"""The package layout: no import cycles, the data flow one way, four modules at the top level."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)


def test_no_import_cycles():
    graph = import_graph.build_graph()
    assert len(graph) > 50  # the script sees the whole package
    assert import_graph.find_cycles(graph) == []
    assert import_graph.find_cycles(import_graph.fold(graph)) == []  # nor between sub-packages


def test_cycle_detection_works():
    assert import_graph.find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_inference_imports_nothing_from_catalogue():
    graph = import_graph.build_graph()
    for mod, deps in graph.items():
        if mod.startswith("gcsbi.inference"):
            assert not [d for d in deps if d.startswith("gcsbi.catalogue")], mod


def test_data_flows_one_way():
    order = ["gcsbi.spec", "gcsbi.stars", "gcsbi.clusters", "gcsbi.observe", "gcsbi.simulator", "gcsbi.bank",
             "gcsbi.nets", "gcsbi.maps", "gcsbi.inference", "gcsbi.catalogue"]
    folded = import_graph.fold(import_graph.build_graph())
    for i, pkg in enumerate(order):
        later = set(order[i + 1:])
        assert not (folded.get(pkg, set()) & later), f"{pkg} imports from {folded[pkg] & later}"
    # gcsbi.jeans only forwards to the separate gcsbi-jeans distribution
    assert folded.get("gcsbi.jeans", set()) <= {"gcsbi.jeans", "gcsbi.errors"}, folded.get("gcsbi.jeans")


def test_top_level_holds_only_cross_cutting_modules():
    """The API root, the CLI root, the exception hierarchy and the file-safety rules every stage uses
    (model-file integrity, output folders); everything else lives in a stage's subpackage."""
    top = sorted(p.name for p in (ROOT / "gcsbi").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py", "errors.py", "integrity.py", "outputs.py"]
