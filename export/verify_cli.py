"""``tfship verify``: check every exported artifact against the SavedModel it came from."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfship.export.verify import DEFAULT_SAMPLES, NOISE_SAMPLES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="run folder (its exports/ is checked) or an export folder with manifest.json")
    parser.add_argument("--inputs", type=Path,
                        help=".npy of inputs shaped like the signature's (default: MNIST test images when they "
                             "fit, else seeded random inputs)")
    parser.add_argument("--samples", type=int, help=f"how many inputs (default {DEFAULT_SAMPLES}; {NOISE_SAMPLES} "
                                                    "when verifying on seeded noise)")
    parser.add_argument("--data-dir", type=Path, help="MNIST folder (default: $TFSHIP_MNIST_DIR or the cache)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurements")


def run(args: argparse.Namespace) -> int:
    from tfship.errors import UsageError
    from tfship.export.cli import quiet_libraries

    if not getattr(args, "debug", False):
        quiet_libraries()
    from tfship.export.inputs import require_npy
    from tfship.export.verify import VerifyConfig, verify_and_report

    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be positive, got {args.samples}")
    require_npy(args.inputs, "--inputs")
    return verify_and_report(VerifyConfig(exports=args.model, inputs=args.inputs, samples=args.samples,
                                          data_dir=args.data_dir, latency=not args.no_latency))
