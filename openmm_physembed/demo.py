"""``physembed demo``: the main job on a small built-in default.

The quick stability preset on paracetamol: GAFF reference MD, self-adaptive bond-length
sampling, GFN2-xTB labels, small MACE models trained on plain and on augmented frames, and
batched 800 K MD of every model, ending in a collapse report and plots. Resumable.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="quick stability benchmark of paracetamol (the main job, small)",
                                 description="Runs `physembed stability paracetamol --preset quick` "
                                             "(about 20-30 minutes on 2 CPU cores). Resumable.")
    demo.add_argument("-o", "--out", default="runs/demo/paracetamol_quick", help="output directory")
    demo.add_argument("--molecule", default="paracetamol")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .cli import main

    return main(["stability", args.molecule, "--preset", "quick", "--out", args.out])
