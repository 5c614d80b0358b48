"""Run every benchmark script in bench/ (``make bench``); each writes bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
runs = [[script] for script in sorted(here.glob("bench_*.py")) + sorted(here.glob("validate_*.py"))]
# the Jeans analysis (its own distribution, gcsbi-jeans): free-form posterior against truth, baseline, dwarfs
runs += [[here / "jeans_freeform.py", "--stage", stage] for stage in ("truth", "baseline", "dwarfs", "consistency")]
for script, *args in runs:
    name = " ".join([script.name, *args])
    print(f"== {name}", flush=True)
    if subprocess.call([sys.executable, str(script), *args], cwd=here.parent) != 0:
        failed.append(name)
print("failed:", failed if failed else "none")
sys.exit(1 if failed else 0)
