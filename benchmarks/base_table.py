"""Best-threshold CAM mIoU of the four WSSS variants and the fully supervised upper bound
on the synthetic benchmark, several seeds each, every run from the command line.

    .venv/bin/python benchmarks/base_table.py --seeds 0 1 2 --out runs/base_table

Each row is ``python -m ppc run`` with the synthetic preset (finished runs are reused);
the table gives mean and standard deviation over seeds of the best-threshold mIoU on the
synthetic *train* split, and the wall time of each run on this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ppc._format import mean_std
from ppc.cli import (  # one-line errors, like python -m ppc
    OneLineParser,
    run_script_extras,
    runs_folder,
)

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "CAM": ["--base", "cam", "--use_ppc", "false"],
    "CAM + PPC": ["--base", "cam", "--use_ppc", "true"],
    "SEAM": ["--base", "seam", "--use_ppc", "false"],
    "SEAM + PPC": ["--base", "seam", "--use_ppc", "true"],
    "full supervision": ["--base", "full", "--use_ppc", "false"],
}


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=runs_folder("pass a folder, or leave --out out",
                                                  resolve=False),
                        default=ROOT / "runs" / "base_table",
                        help="where the runs go (default: runs/base_table in the repository)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        metavar="VARIANT", help=f"of {', '.join(map(repr, VARIANTS))}")
    parser.add_argument("extra", nargs=argparse.REMAINDER,
                        help="more options for python -m ppc run (after --)")
    args = parser.parse_args(argv)
    extra = run_script_extras(parser, args.seeds, args.extra,
                              {"--seed", "--out_dir", "--base", "--use_ppc"})
    rows = {}
    for name in args.variants:
        for seed in args.seeds:
            out = args.out / name.replace(" + ", "+").replace(" ", "_") / f"seed{seed}"
            cmd = [sys.executable, "-m", "ppc", "run", "--quiet", "--seed", str(seed),
                   "--out_dir", str(out), *VARIANTS[name], *extra]
            started = time.perf_counter()
            code = subprocess.run(cmd).returncode
            if code:  # the run printed its own error above
                print(f"error: the run of {name!r} seed {seed} ({out}) failed with exit code "
                      f"{code}", file=sys.stderr)
                return code if code > 0 else 128 - code  # killed by a signal: 128 + signal
            summary = json.loads((out / "summary.json").read_text())
            rows.setdefault(name, []).append((100 * summary["best_miou"],
                                              summary["best_threshold"],
                                              sum(summary["seconds"].values()),
                                              time.perf_counter() - started))
            print(f"{name:18s} seed {seed}: mIoU {rows[name][-1][0]:.1f} "
                  f"(bg {rows[name][-1][1]:.2f}), {rows[name][-1][2]:.0f} s", flush=True)
    print("\n| variant | mIoU mean ± std (train) | per seed | best bg thr | run time |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        mious = [v[0] for v in values]
        print(f"| {name} | {mean_std(mious)} | "
              f"{', '.join(f'{m:.1f}' for m in mious)} | "
              f"{', '.join(f'{v[1]:.2f}' for v in values)} | "
              f"{', '.join(f'{v[2]:.0f} s' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
