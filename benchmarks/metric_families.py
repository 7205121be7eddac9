"""The issue-25 metric families on every built-in method: sanity, robustness, complexity, faithfulness.

Runs ``removalx compare --sanity`` on ``zoo:r3d_tiny_ls`` (synthetic 8x32x32 clips) in groups
of recipes, because the explainers' costs differ by three orders of magnitude and every
re-explaining metric multiplies them (MPRT: 5 re-explanations, random logit: 1,
``max_sensitivity`` / ``local_lipschitz``: ``n_samples`` each, frame shift: 2):

* ``cheap``  (under ~1 s per explanation): 6 clips;
* ``medium`` (~1-2 s): 3 clips;
* ``sampling`` (removal methods with hundreds of forward passes, ~5-9 s): 1 clip, with
  ``lime3d_flow`` in a group of its own (``sampling_b``) that runs side by side;
* ``extremal`` (the EP / STEP optimisers, ~2 min at their 1200 iterations): 1 clip and
  ``explainer.iterations=30`` -- a truncated optimisation, not the papers' method.

Every group writes its own SQLite database (re-running resumes it) and log under ``--out``;
``--lanes`` chains of groups run at once (one torch thread each). ``--table`` parses the logs into one
markdown table. Usage::

    .venv/bin/python benchmarks/metric_families.py --out /tmp/families --lanes 4
    .venv/bin/python benchmarks/metric_families.py --out /tmp/families --table /tmp/families/table.md
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

EXTREMAL = [
    "step", "ep3d", "ep2d_sync", "ep2d_unsync", "step_torchray", "step_logit", "step_min_ratio",
    "ep3d_min_ratio", "ep3d_eccvw", "ep3d_eccvw_shape", "ep3d_evenly", "ep3d_gauss1",
    "ep3d_gauss2", "ep3d_gauss3",
]  # fmt: skip
GROUPS: dict[str, tuple[list[str], int, list[str]]] = {
    "cheap": (
        [
            "gradient", "gradient_x_input", "smoothgrad_sq", "grad_cam", "grad_cam_pp",
            "grad_cam_step", "layer_cam", "ablation_cam", "score_cam", "saliency_tubes",
            "excitation_backprop", "contrastive_eb", "eb_r", "osa3d", "aosa", "aosa_approx",
            "aosa_sgl", "aosa_sgl_approx",
        ],
        6,
        [],
    ),
    "medium": (["ig", "blur_ig", "smoothgrad", "aosa_cs", "loco_lv", "univariate_lv", "xrai3d"], 3, ["--no-random"]),
    "sampling": (["occlusion3d", "rise3d", "lime3d", "kernelshap3d", "leverage_shap3d"], 1, ["--no-random"]),
    "sampling_b": (["lime3d_flow"], 1, ["--no-random"]),
    "extremal": (EXTREMAL, 1, ["--no-random"] + [f"--set={r}:explainer.iterations=30" for r in EXTREMAL]),
}  # fmt: skip
METRICS = (
    "sparseness,complexity,max_sensitivity,local_lipschitz,frame_shift=max_sensitivity,"
    "faithfulness_correlation,road"
)
METRIC_SETS = [
    "max_sensitivity.n_samples=3",
    "local_lipschitz.n_samples=3",
    "frame_shift.perturbation=frame_shift",
]
LANES = [["cheap"], ["medium", "sampling"], ["extremal"], ["sampling_b"]]


def command(group: str, out: Path, n_videos: int | None = None) -> list[str]:
    """The ``removalx compare`` command line of one group."""
    recipes, n, extra = GROUPS[group]
    cmd = [
        str(Path(sys.executable).with_name("removalx")),
        "compare",
        "--recipes",
        ",".join(recipes),
        "--sanity",
    ]
    cmd += ["--metrics", METRICS] + [f"--metric-set={s}" for s in METRIC_SETS]
    cmd += ["--model", "zoo:r3d_tiny_ls", "--frames", "8", "--size", "32", "--n-videos", str(n_videos or n)]
    return cmd + extra + ["--db", str(out / f"{group}.db"), "--quiet"]


def run(out: Path, lanes: int) -> None:
    """Run the groups, ``lanes`` chains of groups at once; logs under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    chains = LANES if lanes >= len(LANES) else [[g for lane in LANES for g in lane]]
    procs = []
    for chain in chains:
        script = " && ".join(
            f"{{ /usr/bin/time -f 'wall %e s' {' '.join(repr(c) for c in command(g, out))} ; }} > {out / g}.log 2>&1"
            for g in chain
        )
        procs.append(subprocess.Popen(["bash", "-c", script], env=env))
    t0 = time.perf_counter()
    codes = [p.wait() for p in procs]
    print(f"exit codes {codes}; wall {time.perf_counter() - t0:.0f} s")


_ROW = re.compile(r"\s{2,}")


def parse(log: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table ``compare`` printed in ``log``."""
    lines = log.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("method ")), None)
    if start is None:  # still running or failed: no table yet
        return [], []
    header = _ROW.split(lines[start].strip())
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("metric cells"):
            break
        rows.append(_ROW.split(line.strip()))
    return header, rows


COLUMNS = [
    "mprt",
    "random_logit",
    "max_sensitivity",
    "local_lipschitz",
    "frame_shift",
    "sparseness",
    "faithfulness_correlation",
    "road",
]


def table(out: Path) -> str:
    """One markdown table over the groups' logs (cells as ``compare`` printed them)."""
    lines = [
        "| method | group | n | " + " | ".join(f"`{c}`" for c in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for group in GROUPS:
        log = out / f"{group}.log"
        header, rows = parse(log) if log.exists() else ([], [])
        for row in rows:
            cell = dict(zip(header, row, strict=False))
            name = cell["method"].replace("[fails:", "**fails:").replace("]", "**")
            vals = [cell.get(c, "").rstrip("*") for c in COLUMNS]
            label = group.split("_")[0]
            lines.append(f"| {name} | {label} | {cell['n']} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/metric_families"))
    ap.add_argument("--lanes", type=int, default=4, help="chains of groups run at once (1 or 4)")
    ap.add_argument("--print", action="store_true", help="print the commands and exit")
    ap.add_argument("--table", type=Path, help="write the markdown table of the logs to this file and exit")
    a = ap.parse_args()
    if a.print:
        for g in GROUPS:
            print(" ".join(command(g, a.out)))
    elif a.table:
        a.table.write_text(table(a.out))
    else:
        run(a.out, a.lanes)


if __name__ == "__main__":
    main()
