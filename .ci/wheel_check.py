"""Does the wheel work for someone who only installs it?

Builds the wheel with ``python -m build``, installs it into a fresh virtual environment (no source
tree on the path: the check runs from a temporary folder), and runs there ``mfh-sim --help`` and the
README's Python example (its seed counts cut to a few, as tests/test_readme.py does: the check is
that the installed package runs, not what it computes).  Exits non-zero on the first failure.

    make wheel-check        # what CI runs after the test suite
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEW_SEEDS = 3


def run(command: list[str], cwd: Path) -> str:
    print("+", " ".join(command), flush=True)
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"failed ({completed.returncode}): {' '.join(command)}\n{completed.stdout[-2000:]}"
                 f"\n{completed.stderr[-4000:]}")
    return completed.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mfh-sim-wheel-") as tmp:
        work = Path(tmp)
        run([sys.executable, "-m", "pip", "install", "--quiet", "build"], ROOT)
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)], ROOT)
        wheels = sorted((work / "dist").glob("mfh_sim-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel, found {wheels}")
        venv.create(work / "env", with_pip=True)
        python = work / "env" / "bin" / "python"
        run([str(python), "-m", "pip", "install", "--quiet", str(wheels[0])], work)
        where = run([str(python), "-c", "import mfh_sim; print(mfh_sim.__file__)"], work).strip()
        if not where.startswith(str(work / "env")):
            sys.exit(f"mfh_sim was imported from {where}, not from the fresh environment")
        run([str(work / "env" / "bin" / "mfh-sim"), "--help"], work)
        readme = (ROOT / "README.md").read_text()
        example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
        example = re.sub(r"\bseeds=(\d+)", lambda m: f"seeds={min(int(m.group(1)), FEW_SEEDS)}", example)
        (work / "example.py").write_text(example)
        output = run([str(python), "example.py"], work)
        if "KD gain" not in output:
            sys.exit(f"the README example printed no 'KD gain' row:\n{output}")
        print(f"wheel {wheels[0].name}: installs in a fresh environment, mfh-sim --help and the README "
              "example run")


if __name__ == "__main__":
    main()
