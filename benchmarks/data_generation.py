#!/usr/bin/env python
"""How fast is the synthetic data generator of the zoo?

``removalx zoo train`` generates its training set on the fly (about 2000 clips of
16x112x112), so generation must stay well under a minute for a training run. This prints
clips per second and the projected time of a 2000-clip training set. It is a measurement,
not a test: on a loaded machine the numbers move, and nothing asserts them.

    .venv/bin/python benchmarks/data_generation.py --clips 100 --repeat 3
"""

from __future__ import annotations

import argparse
import time

from removalx.zoo.data import make_dataset


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=100, help="clips per timing (default 100)")
    p.add_argument("--repeat", type=int, default=3, help="timings; the minimum is reported (default 3)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=112)
    args = p.parse_args(argv)
    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        make_dataset(args.clips, seed=0, frames=args.frames, size=args.size)
        times.append(time.perf_counter() - t0)
    best = min(times)
    rate = args.clips / best
    print(f"{args.clips} clips of {args.frames}x{args.size}x{args.size}: {best:.2f} s (best of {len(times)})")
    print(f"  {rate:.1f} clips/s; a 2000-clip training set: {2000 / rate:.1f} s")


if __name__ == "__main__":
    main()
