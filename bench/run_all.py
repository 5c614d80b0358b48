"""Run every benchmark script in bench/ (``make bench``); each writes bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("bench_*.py")) + sorted(here.glob("validate_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.call([sys.executable, str(script)], cwd=here.parent) != 0:
        failed.append(script.name)
print("failed:", failed if failed else "none")
sys.exit(1 if failed else 0)
