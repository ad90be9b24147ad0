"""The formats tfship exports, as data. A new format is one module plus one entry here.

Each entry describes its format fully, so tests are generated from the registry: its exporter and
runner as ``module:Class`` strings (nothing heavy is imported until a format is used), the packages
whose versions go into the manifest, and a ``perturb(path, out) -> str`` hook that writes a copy of an
artifact with one weight changed (every format automatically gets "verify catches a perturbed
artifact", not just a round trip).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata

from tfship.errors import MissingDependencyError, UsageError


@dataclass(frozen=True)
class FormatEntry:
    name: str
    exporter: str                       # "module:Class" of an export.base.Exporter
    runner: str                         # "module:Class" of an export.base.Runner
    converter_packages: tuple[str, ...]  # distributions whose versions describe the conversion
    runtime_packages: tuple[str, ...]    # distributions that run the artifact here
    perturb: str                        # "module:function" (path, out, factor) -> changed tensor's name
    extra: str = "export"               # the pip extra that installs them


FORMATS: dict[str, FormatEntry] = {
    e.name: e for e in (
        FormatEntry("tflite", "tfship.export.tflite:TfliteExporter", "tfship.export.runners.tflite:TfliteRunner",
                    ("tensorflow",), ("ai-edge-litert",), "tfship.export.tflite:perturb"),
        FormatEntry("onnx", "tfship.export.onnx:OnnxExporter", "tfship.export.runners.onnx:OnnxRunner",
                    ("tf2onnx", "onnx", "tensorflow"), ("onnxruntime",), "tfship.export.onnx:perturb"),
        FormatEntry("coreml", "tfship.export.coreml:CoremlExporter", "tfship.export.runners.coreml:CoremlRunner",
                    ("coremltools", "tensorflow"), ("coremltools", "numpy"), "tfship.export.coreml:perturb"),
    )
}

# The reference every artifact is compared with.
REFERENCE_RUNNER = "tfship.export.runners.savedmodel:SavedModelRunner"


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"tflite,onnx"`` -> ("tflite", "onnx"); None or "all" -> every format. Unknown names list the valid ones."""
    if text is None or text.strip() in ("", "all"):
        return tuple(FORMATS)
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise UsageError(f"unknown format{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"valid formats: {', '.join(FORMATS)}")
    return names


def load_object(spec: str, extra: str = "export"):
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if e.name and not e.name.startswith("tfship"):
            raise MissingDependencyError(e.name, extra, f"'{module_name}'") from e
        raise
    return getattr(module, attr)


def exporter(name: str):
    entry = FORMATS[name]
    return load_object(entry.exporter, entry.extra)()


def perturber(fmt: str):
    entry = FORMATS[fmt]
    return load_object(entry.perturb, entry.extra)


def runner_class(fmt: str):
    if fmt == "savedmodel":
        return load_object(REFERENCE_RUNNER)
    if fmt not in FORMATS:
        raise UsageError(f"no runner for format '{fmt}'; known formats: savedmodel, {', '.join(FORMATS)}")
    entry = FORMATS[fmt]
    return load_object(entry.runner, entry.extra)


def package_versions(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
