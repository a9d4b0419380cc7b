"""Measurement: how far two resizing conventions of the official code are from ``ppc``'s.

Not a training comparison: it resizes smooth random maps both ways and prints how far
apart the results are (``book/paper_vs_code.md`` quotes it).

1. **Classification scores.** The official code average-pools the CAM upsampled to the
   448 px image (``align_corners=True``, so the border cells weigh about half); ``ppc``
   pools the 56x56 CAM itself.
2. **SEAM's ER and ECR maps.** The official code resizes 56 -> 448 -> 128 with
   ``align_corners=True``; ``ppc`` resizes 56 -> 128 in one step with
   ``align_corners=False`` (one geometry for images, features and CAMs).

The maps: ``[8, 20, 56, 56]``, standard normal values on a coarse grid (``--coarse`` x
``--coarse`` cells) upsampled bicubically to 56x56, so each map varies smoothly, with
values of the order of 1 (a CAM's logits before the ReLU are of that order). Run from the
repository root::

    .venv/bin/python benchmarks/resize_conventions.py > results/measurements/resize_conventions.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ppc.cli import OneLineParser  # noqa: E402


def smooth_maps(seed: int, coarse: int, n: int = 8, c: int = 20, side: int = 56):
    generator = torch.Generator().manual_seed(seed)
    grid = torch.randn(n, c, coarse, coarse, generator=generator, dtype=torch.float64)
    return F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="random batches (default 5)")
    parser.add_argument("--coarse", type=int, nargs="+", default=[4, 7, 14],
                        help="coarse grid sides: smaller is smoother (default 4 7 14)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if not all(2 <= c <= 56 for c in args.coarse):
        parser.error(f"--coarse sides must be in [2, 56] (the maps are 56x56), got {args.coarse}")
    print("maps [8, 20, 56, 56], float64, standard normal on a coarse grid, bicubic to 56")
    print(f"{'coarse':>6}  {'score |diff| max':>16}  {'score std':>9}  "
          f"{'map |diff| max':>14}  {'map |diff| mean / std':>21}")
    for coarse in args.coarse:
        score_diff, score_std, map_max, map_rel = 0.0, [], 0.0, []
        for seed in range(args.seeds):
            maps = smooth_maps(seed, coarse)
            official = F.interpolate(maps, size=(448, 448), mode="bilinear",
                                     align_corners=True).mean(dim=(2, 3))
            ours = maps.mean(dim=(2, 3))
            score_diff = max(score_diff, float((official - ours).abs().max()))
            score_std.append(float(ours.std()))
            via_448 = F.interpolate(F.interpolate(maps, size=(448, 448), mode="bilinear",
                                                  align_corners=True),
                                    size=(128, 128), mode="bilinear", align_corners=True)
            direct = F.interpolate(maps, size=(128, 128), mode="bilinear", align_corners=False)
            diff = (via_448 - direct).abs()
            map_max = max(map_max, float(diff.max()))
            map_rel.append(float(diff.mean() / direct.std()))
        print(f"{coarse:>6}  {score_diff:>16.4f}  {sum(score_std) / len(score_std):>9.4f}  "
              f"{map_max:>14.4f}  {100 * sum(map_rel) / len(map_rel):>20.2f}%")
    print("score: global average of each class's map (one per image and class); "
          "map |diff| mean / std: mean absolute difference of the 128x128 maps over the "
          "maps' standard deviation")


if __name__ == "__main__":
    main()
