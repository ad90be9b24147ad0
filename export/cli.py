"""``export-all`` / ``tfship export``: parse into an ExportConfig, export, then verify (unless --no-verify)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfship.export.registry import FORMATS, parse_formats


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="run folder (runs/cnn), SavedModel base folder, or one version folder")
    parser.add_argument("--out", type=Path, help="output folder (default: <run>/exports)")
    parser.add_argument("--formats", default="all",
                        help=f"comma-separated formats: {','.join(FORMATS)} (default: all)")
    parser.add_argument("--version", type=int, help="SavedModel version (default: the highest)")
    parser.add_argument("--signature", help="predict signature to export (default: predict_images, "
                                            "serving_default, serve, or the one that fits)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (13-18, default 17)")
    parser.add_argument("--coreml-name", default="MNISTClassifier",
                        help="CoreML file stem = the Swift class Xcode generates (default: MNISTClassifier)")
    parser.add_argument("--coreml-precision", choices=("fp16", "fp32"), default="fp16",
                        help="ML Program (.mlpackage) compute precision (the .mlmodel is always fp32)")
    parser.add_argument("--calibration-data", type=Path,
                        help=".npy of representative inputs for int8 calibration (default: MNIST training images "
                             "for 28x28x1 models, else seeded noise)")
    parser.add_argument("--data-dir", type=Path, help="MNIST folder (default: $TFSHIP_MNIST_DIR or the cache)")
    parser.add_argument("--no-verify", action="store_true", help="skip the full parity check after export")
    parser.add_argument("--verify-inputs", type=Path,
                        help=".npy of inputs to verify with (default: the 10,000 MNIST test images when they fit)")


def run(args: argparse.Namespace) -> int:
    from tfship.export.base import ExportOptions
    from tfship.export.pipeline import ExportConfig, export_all, require_npy

    config = ExportConfig(
        model=args.model, out=args.out, formats=parse_formats(args.formats), version=args.version,
        signature=args.signature,
        options=ExportOptions(opset=args.opset, coreml_name=args.coreml_name,
                              coreml_precision=args.coreml_precision),
        calibration_data=args.calibration_data, data_dir=args.data_dir)
    if not args.no_verify:
        require_npy(args.verify_inputs, "--verify-inputs")
    result = export_all(config)
    print(f"exported {len(result.manifest['artifacts'])} artifacts to {result.out} in {result.seconds:.1f} s "
          f"(manifest: {result.out / 'manifest.json'})")
    if args.no_verify:
        return 0
    from tfship.export.verify import VerifyConfig, verify_and_report

    return verify_and_report(VerifyConfig(exports=result.out, inputs=args.verify_inputs, data_dir=args.data_dir))
