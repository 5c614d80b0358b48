"""Every command and Python example of the user documentation runs, exits 0 and prints no warning.

Convention, for README.md, docs/*.md and jeans/README.md:

* a fenced ```` ```bash ```` (or ```` ```sh ````) block holds commands that are run: one command per
  line (a trailing backslash continues it; lines starting with ``#`` are comments);
* a fenced ```` ```python ```` block is a script that is run;
* a fenced ```` ```text ```` block is shown and never run (installation, commands that take hours,
  command output). Every fenced block is one of these three.

The blocks of one document run in document order in one fresh folder, so a later block may use
what an earlier one wrote; each command runs through ``bash -c`` with the virtual environment's
``bin`` first on ``PATH`` and ``OMP_NUM_THREADS=1``. A block that mentions ``$GCSBI_SHARED_DATA``
needs the shared data folder (``GCSBI_SHARED_DATA`` if set, else ``../shared/data`` as in
``conftest.SHARED_DATA``) and is skipped without it; every other block runs without
``GCSBI_SHARED_DATA``, as after a plain install. A command passes when it exits 0 and no line of
its output (stdout and stderr) is a warning (matches ``warning:`` or starts with ``WARNING``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "jeans" / "README.md"]
RUN = {"bash": "bash", "sh": "bash", "python": "python"}
SHOWN = {"text"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
WARNING_LINE = re.compile(r"warning:|^\s*WARNING\b", re.I)
SHARED_VAR = "GCSBI_SHARED_DATA"
TIMEOUT_S = 900


def _shared_data() -> Path:
    env = os.environ.get(SHARED_VAR)
    return Path(env) if env else ROOT.parent / "shared" / "data"


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, body) of every fenced block of ``path``, in order."""
    return [(lang.strip().lower(), body) for lang, body in FENCE.findall(path.read_text(encoding="utf-8"))]


def runnable_blocks(path: Path) -> list[tuple[str, str]]:
    """("bash" | "python", body) of the blocks that are run."""
    return [(RUN[lang], body) for lang, body in fenced_blocks(path) if lang in RUN]


def commands(body: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comment and blank lines dropped."""
    out: list[str] = []
    parts: list[str] = []
    for line in body.splitlines():
        text = line.strip()
        if not parts and (not text or text.startswith("#")):
            continue
        if text.endswith("\\"):
            parts.append(text[:-1].strip())
            continue
        out.append(" ".join(p for p in [*parts, text] if p))
        parts = []
    if parts:
        out.append(" ".join(p for p in parts if p))
    return out


def _env(shared: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SHARED_VAR, "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1",
               MPLBACKEND="Agg")
    if shared:
        env[SHARED_VAR] = str(_shared_data())
    return env


def _check(what: str, proc: subprocess.CompletedProcess) -> None:
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    assert proc.returncode == 0, f"{what}\nexited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    warned = [line.strip() for chunk in text.splitlines() for line in chunk.split("\r") if WARNING_LINE.search(line)]
    assert not warned, f"{what}\nprinted warnings:\n" + "\n".join(warned[:20])


def run_block(lang: str, body: str, folder: Path) -> None:
    """Run one block in ``folder``; fails the test on a non-zero exit or a warning line."""
    env = _env(SHARED_VAR in body)
    if lang == "python":
        proc = subprocess.run([sys.executable, "-c", body], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        _check(f"python block:\n{body}", proc)
        return
    for cmd in commands(body):
        proc = subprocess.run(["bash", "-c", cmd], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        _check(f"$ {cmd}", proc)


CASES = [(doc, i) for doc in DOCS for i in range(len(runnable_blocks(doc)))]


def _needs_shared(body: str) -> bool:
    return SHARED_VAR in body and not _shared_data().is_dir()


@pytest.fixture(scope="module")
def doc_folders(tmp_path_factory):
    """Per document: its working folder and the index of the next block to run there."""
    state: dict[Path, dict] = {}

    def get(doc: Path) -> dict:
        if doc not in state:
            state[doc] = {"folder": tmp_path_factory.mktemp(doc.stem.lower()), "next": 0}
        return state[doc]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("doc,index", [pytest.param(d, i, marks=pytest.mark.xdist_group(str(d.relative_to(ROOT))))
                                       for d, i in CASES], ids=[f"{d.relative_to(ROOT)}#{i + 1}" for d, i in CASES])
def test_doc_block_runs(doc, index, doc_folders):
    blocks = runnable_blocks(doc)
    st = doc_folders(doc)
    # blocks before this one that have not run (this test selected alone): run them first, quietly
    for i in range(st["next"], index):
        st["next"] = i + 1
        if not _needs_shared(blocks[i][1]):
            try:
                run_block(*blocks[i], st["folder"])
            except AssertionError as exc:
                pytest.fail(f"an earlier block of {doc.name} (#{i + 1}) failed:\n{exc}")
    st["next"] = max(st["next"], index + 1)
    lang, body = blocks[index]
    if _needs_shared(body):
        pytest.skip(f"needs the shared data folder ({SHARED_VAR}, default {_shared_data()}): not found")
    run_block(lang, body, st["folder"])


def test_docs_follow_the_block_convention():
    """Every fenced block is bash/sh (run), python (run) or text (shown); the documents have runnable blocks."""
    for doc in DOCS:
        assert doc.is_file(), doc
        text = doc.read_text(encoding="utf-8")
        assert text.count("```") % 2 == 0, f"{doc.name}: unbalanced code fences"
        bad = [lang or "(no language)" for lang, _ in fenced_blocks(doc) if lang not in RUN and lang not in SHOWN]
        assert not bad, f"{doc.name}: fenced blocks must be bash, python or text, found {bad}"
    assert runnable_blocks(ROOT / "README.md"), "README.md has no runnable example"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 160, "README.md is meant to stay short: details go to docs/"


def test_doc_links_resolve():
    """Relative links between the documents point to files that exist."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    for doc in DOCS:
        for target in link.findall(doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)}: broken link {target}"


def test_commands_parse():
    assert commands("a \\\n  --b c\n# note\n\nd e  # trailing\n") == ["a --b c", "d e  # trailing"]
