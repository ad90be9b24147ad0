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
    parser.add_argument("--coreml-name",
                        help="CoreML file stem = the Swift class Xcode generates (default: from the model "
                             "folder, e.g. runs/mobilenet_v2 -> MobilenetV2)")
    parser.add_argument("--coreml-precision", choices=("fp16", "fp32"), default="fp16",
                        help="ML Program (.mlpackage) compute precision (the .mlmodel is always fp32)")
    parser.add_argument("--calibration-data", type=Path,
                        help=".npy of representative inputs for int8 calibration (default: MNIST training images "
                             "for 28x28x1 models, else seeded noise)")
    parser.add_argument("--data-dir", type=Path, help="MNIST folder (default: $TFSHIP_MNIST_DIR or the cache)")
    parser.add_argument("--no-verify", action="store_true", help="skip the full parity check after export")
    parser.add_argument("--verify-inputs", type=Path,
                        help=".npy of inputs to verify with (default: the 10,000 MNIST test images when they fit)")


def quiet_libraries() -> None:
    """A command's output is tfship's own words: TensorFlow's C++ log, converter progress bars, library
    version warnings and INFO logs stay out (``--debug`` keeps them). Call before TensorFlow is imported."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TQDM_DISABLE", "1")   # coremltools' graph-pass progress bars
    for name in ("tensorflow", "absl", "coremltools", "tf2onnx", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(coremltools|tf2onnx|tensorflow|keras|onnx)(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run(args: argparse.Namespace) -> int:
    """Export, verify, print one line per artifact; exit 1 when any requested artifact is not verified
    (or, with --no-verify, not exported), after everything that could be written was."""
    if not getattr(args, "debug", False):
        quiet_libraries()
    from tfship.export import manifest
    from tfship.export.base import ExportOptions
    from tfship.export.inputs import require_npy
    from tfship.export.pipeline import ExportConfig, export_all
    from tfship.export.report import status_table

    config = ExportConfig(
        model=args.model, out=args.out, formats=parse_formats(args.formats), version=args.version,
        signature=args.signature,
        options=ExportOptions(opset=args.opset, coreml_name=args.coreml_name,
                              coreml_precision=args.coreml_precision),
        calibration_data=args.calibration_data, data_dir=args.data_dir)
    if not args.no_verify:
        require_npy(args.verify_inputs, "--verify-inputs")
    result = export_all(config)
    document = result.manifest
    if not args.no_verify:
        from tfship.export.verify import VerifyConfig, verify

        verify(VerifyConfig(exports=result.out, inputs=args.verify_inputs, data_dir=args.data_dir),
               source=result.source)
        document = manifest.read(result.out)
    print(status_table(document))
    wanted = manifest.EXPORTED if args.no_verify else manifest.VERIFIED
    failed = [a for a in document["artifacts"] if a["status"] != wanted]
    print(f"{len(document['artifacts']) - len(failed)} of {len(document['artifacts'])} artifacts "
          f"{wanted} in {result.out} ({result.seconds:.1f} s export; manifest: {result.out / 'manifest.json'})")
    return 1 if failed else 0
