"""``tfship ios-install``: put the exported CoreML classifier into the iOS demo app (``ios_demo/``).

The app finds its model by name: Xcode compiles ``MNISTClassifier.mlmodel`` into
``MNISTClassifier.mlmodelc`` and generates a Swift class named after the file stem. So the file is
always installed under the contract's name, and it is checked against the contract the Swift code
relies on (``ios_demo/MNISTDemo/ModelContract.swift``, mirrored by ``APP_CONTRACT`` below; a test
keeps the two equal) before it is copied, so a model the app could not use never lands there.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path

from tfship import contract
from tfship.errors import ModelNotFoundError, SignatureError, UsageError, require

MLMODEL_SUFFIX = ".mlmodel"
EXPORTS_DIR = "exports"
# Where the app's project.yml takes the model from, relative to the app folder.
APP_MODEL_DIR = Path("MNISTDemo") / "Model"
APP_PROJECT_FILE = "project.yml"
DEFAULT_RUN = "runs/cnn"
DEFAULT_APP_DIR = "ios_demo"


@dataclass(frozen=True)
class AppModelContract:
    """What the iOS app expects of its CoreML model: the names in ``ModelContract.swift``."""

    class_name: str            # Xcode names the generated class after the .mlmodel file stem
    input_name: str
    image_width: int
    image_height: int
    color_space: str           # lower-case name of the spec's ImageFeatureType.ColorSpace
    label_output: str          # String: the predicted label
    probabilities_output: str  # Dictionary<String, Double>: label -> probability
    labels: tuple[str, ...]
    pixel_scale: float         # the model multiplies 0..255 pixels by this before the first layer


APP_CONTRACT = AppModelContract(
    class_name="MNISTClassifier",
    input_name="image",
    image_width=contract.IMAGE_WIDTH,
    image_height=contract.IMAGE_HEIGHT,
    color_space="grayscale",
    label_output="classLabel",
    probabilities_output="classLabelProbs",
    labels=contract.MNIST_LABELS,
    pixel_scale=1.0 / 255.0,
)

# The spec stores the scale as float32: 1/255 comes back as 0.00392156886, 1.2e-8 relative off.
PIXEL_SCALE_REL_TOL = 1e-6


def _load_spec(path: Path):
    ct = require("coremltools", "coremltools", "export", "Reading a CoreML model")
    try:
        return ct.utils.load_spec(str(path))
    except Exception as e:  # protobuf raises its own DecodeError; any failure means "not a model"
        raise SignatureError(f"'{path}' is not a readable CoreML model: {e}") from e


def read_mlmodel_contract(path: Path, spec=None) -> AppModelContract:
    """The contract values a CoreML ``.mlmodel`` actually has (pass ``spec`` to skip loading)."""
    path = Path(path)
    spec = _load_spec(path) if spec is None else spec
    kind = spec.WhichOneof("Type")
    if kind != "neuralNetworkClassifier":
        raise SignatureError(f"'{path}' is a CoreML '{kind}' model; the iOS app needs a "
                             "neuralNetworkClassifier (export it with 'export-all')")
    desc = spec.description
    if len(desc.input) != 1 or desc.input[0].type.WhichOneof("Type") != "imageType":
        found = [(i.name, i.type.WhichOneof("Type")) for i in desc.input]
        raise SignatureError(f"'{path}' must have exactly one image input, has {found}")
    image_input = desc.input[0]
    image = image_input.type.imageType
    from coremltools.proto import FeatureTypes_pb2

    color_space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace).lower()
    classifier = spec.neuralNetworkClassifier
    return AppModelContract(
        class_name=path.stem,
        input_name=image_input.name,
        image_width=int(image.width),
        image_height=int(image.height),
        color_space=color_space,
        label_output=desc.predictedFeatureName,
        probabilities_output=desc.predictedProbabilitiesName,
        labels=_class_labels(classifier),
        pixel_scale=_pixel_scale(classifier, image_input.name),
    )


def _class_labels(classifier) -> tuple[str, ...]:
    which = classifier.WhichOneof("ClassLabels")
    if which == "stringClassLabels":
        return tuple(classifier.stringClassLabels.vector)
    if which == "int64ClassLabels":
        # Int labels make Xcode's classLabel an Int64, not the String the app reads.
        return tuple(f"int64:{v}" for v in classifier.int64ClassLabels.vector)
    return ()


def _pixel_scale(classifier, input_name: str) -> float:
    """The scale of the input's ``scaler`` preprocessing; 1.0 when the model takes raw pixels."""
    for pre in classifier.preprocessing:
        if pre.featureName in ("", input_name) and pre.WhichOneof("preprocessor") == "scaler":
            return float(pre.scaler.channelScale) if pre.scaler.channelScale != 0 else 1.0
    return 1.0


def contract_mismatches(expected: AppModelContract, actual: AppModelContract) -> list[str]:
    """Every field where ``actual`` differs from ``expected``, as readable lines (empty: all match)."""
    problems = []
    for f in fields(AppModelContract):
        want, got = getattr(expected, f.name), getattr(actual, f.name)
        if f.name == "pixel_scale":
            same = math.isclose(want, got, rel_tol=PIXEL_SCALE_REL_TOL)
        else:
            same = want == got
        if not same:
            problems.append(f"{f.name}: app expects {want!r}, model has {got!r}")
    return problems


def check_mlmodel(path: Path, expected: AppModelContract = APP_CONTRACT, *, as_name: str | None = None) -> None:
    """Raise SignatureError listing every way the model at ``path`` breaks the app's contract.

    ``as_name`` is the file stem the model will be installed under (it decides the class name).
    """
    actual = read_mlmodel_contract(path)
    if as_name is not None:
        actual = replace(actual, class_name=as_name)
    problems = contract_mismatches(expected, actual)
    if problems:
        raise SignatureError(f"'{path}' does not match the iOS app's ModelContract.swift: "
                             + "; ".join(problems))


def find_mlmodel(model: str | os.PathLike, class_name: str = APP_CONTRACT.class_name) -> Path:
    """The ``.mlmodel`` a user means: the file itself, an exports folder, or a run folder.

    In a folder the file named after the contract's class is taken; if the exports folder holds
    integer-versioned subfolders instead, the highest version that has the file is taken.
    """
    p = Path(model)
    file_name = class_name + MLMODEL_SUFFIX
    hint = f"run 'export-all --model {DEFAULT_RUN}' first (or pass --model with the .mlmodel path)"
    if p.is_file():
        if p.suffix != MLMODEL_SUFFIX:
            raise UsageError(f"'{p}' is not a {MLMODEL_SUFFIX} file; pass the exported {file_name}, "
                             "its exports folder or the run folder")
        return p
    if not p.exists():
        raise ModelNotFoundError(f"'{p}' does not exist; {hint}")
    if p.suffix == ".mlpackage":
        # The ML Program needs iOS 15 and its own loading code; the app is built around the .mlmodel.
        raise UsageError(f"'{p}' is an ML Program package; the app uses the NeuralNetwork {file_name} "
                         f"that export-all writes beside it: pass {p.with_name(file_name)}")
    for folder in (p, p / EXPORTS_DIR):
        found = _in_folder(folder, file_name) or _from_manifest(folder)
        if found is not None:
            return found
    others = sorted(str(f) for folder in (p, p / EXPORTS_DIR) if folder.is_dir()
                    for f in folder.glob(f"*{MLMODEL_SUFFIX}"))
    if others:
        # Exported with another --coreml-name: installing it renames it to the contract's name.
        hint = f"found {', '.join(others)}: pass it with --model to install it as {file_name}"
    raise ModelNotFoundError(f"no exported {file_name} in '{p}' or '{p / EXPORTS_DIR}'; {hint}")


def _from_manifest(folder: Path) -> Path | None:
    """The one NeuralNetwork .mlmodel an export-all manifest lists as verified (or exported, not yet
    verified): export-all names the file after the model folder unless --coreml-name, and installing
    renames it to the app's class."""
    import json

    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        artifacts = json.loads(path.read_text(encoding="utf-8")).get("artifacts", [])
    except (OSError, ValueError):
        return None
    found = [folder / a["path"] for a in artifacts if str(a.get("path", "")).endswith(MLMODEL_SUFFIX)
             and a.get("status", "verified") in ("verified", "exported") and (folder / a["path"]).is_file()]
    return found[0] if len(found) == 1 else None


def _in_folder(folder: Path, file_name: str) -> Path | None:
    if (folder / file_name).is_file():
        return folder / file_name
    if not folder.is_dir():
        return None
    versions = sorted((int(c.name) for c in folder.iterdir() if c.name.isdigit()
                       and (c / file_name).is_file()), reverse=True)
    return folder / str(versions[0]) / file_name if versions else None


def app_model_path(app_dir: str | os.PathLike, class_name: str = APP_CONTRACT.class_name) -> Path:
    """Where the app expects its model; checks that ``app_dir`` is the demo app folder."""
    app = Path(app_dir)
    if not (app / APP_PROJECT_FILE).is_file():
        raise UsageError(f"'{app}' is not the iOS demo app folder (no {APP_PROJECT_FILE} in it); "
                         f"run from the repository root or pass --app-dir path/to/{DEFAULT_APP_DIR}")
    return app / APP_MODEL_DIR / (class_name + MLMODEL_SUFFIX)


def install(mlmodel: Path, app_dir: str | os.PathLike, *, check: bool = True,
            expected: AppModelContract = APP_CONTRACT) -> Path:
    """Copy ``mlmodel`` into the app under the contract's name (atomically) and return the new path."""
    target = app_model_path(app_dir, expected.class_name)
    if check:
        check_mlmodel(mlmodel, expected, as_name=expected.class_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Copy next to the target and rename, so Xcode never sees a half-written model.
    fd, tmp = tempfile.mkstemp(prefix=".installing-", suffix=MLMODEL_SUFFIX, dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(mlmodel, tmp)
        # mkstemp makes the file private (0600); the installed model gets the export's mode.
        shutil.copymode(mlmodel, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@dataclass(frozen=True)
class IosInstallArgs:
    model: str
    app_dir: str
    check: bool


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_RUN,
                        help="run folder, exports folder or .mlmodel file (default: %(default)s, "
                             f"which means %(default)s/{EXPORTS_DIR}/{APP_CONTRACT.class_name}{MLMODEL_SUFFIX})")
    parser.add_argument("--app-dir", default=DEFAULT_APP_DIR,
                        help="the iOS demo app folder, holding project.yml (default: %(default)s)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="copy without checking the model against ModelContract.swift")


def run(args: argparse.Namespace) -> int:
    opts = IosInstallArgs(model=args.model, app_dir=args.app_dir, check=args.check)
    # Check both paths before loading coremltools (which imports TensorFlow, ~3 s).
    source = find_mlmodel(opts.model)
    app_model_path(opts.app_dir)
    target = install(source, opts.app_dir, check=opts.check)
    size_kb = target.stat().st_size / 1024
    print(f"installed {source} -> {target} ({size_kb:.0f} KB)")
    print(f"next: cd {opts.app_dir} && xcodegen generate && open MNISTDemo.xcodeproj "
          "(see ios_demo/README.md)")
    return 0
