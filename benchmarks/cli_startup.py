#!/usr/bin/env python
"""How long does the ``removalx`` command take to come up? (docs/benchmarks.md)

Times, each in a fresh interpreter and repeated ``--repeat`` times (minimum and median shown):

1. ``removalx --help`` -- the parser of every subcommand, nothing else (target < 1 s);
2. ``python -c "import removalx"`` -- the package itself (its public names are imported
   lazily, PEP 562, so this costs almost nothing);
3. ``python -c "import torch"`` -- the reference: what every command would pay if the parser
   imported torch;
4. ``python -c "from removalx import Explainer"`` -- the first real use (imports torch).

The ratio ``removalx --help`` / ``import torch`` is the number to watch: a value near or above 1
means something on the parser's import path pulls torch in again (tests/test_cli_startup.py
checks that directly, without timing).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(cmd: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs of every command (default 5)")
    args = ap.parse_args(argv)
    exe = shutil.which("removalx", path=str(Path(sys.executable).parent)) or shutil.which("removalx")
    py = sys.executable
    cases = {
        "removalx --help": [exe, "--help"] if exe else [py, "-m", "removalx.cli", "--help"],
        "import removalx": [py, "-c", "import removalx"],
        "import torch": [py, "-c", "import torch"],
        "from removalx import Explainer": [py, "-c", "from removalx import Explainer"],
    }
    times = {name: _time(cmd, args.repeat) for name, cmd in cases.items()}
    print(f"{'command':34s} {'min (s)':>8s} {'median (s)':>10s}   ({args.repeat} runs each)")
    for name, ts in times.items():
        print(f"{name:34s} {min(ts):8.3f} {statistics.median(ts):10.3f}")
    ratio = min(times["removalx --help"]) / min(times["import torch"])
    print(f"\n'removalx --help' / 'import torch' (minimums): {ratio:.2f}  (target: well below 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
