"""``tfship predict`` / ``tfship status`` / ``tfship metadata``: query a served model from a shell.

One module serves the three subcommands (the dispatcher passes the subcommand's name to
``configure``). Nothing heavy is imported: no TensorFlow, and grpc/requests only when a client is made.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tfship import contract
from tfship.errors import UsageError

CONFIGURE_TAKES_NAME = True
DEFAULT_SERVER = "grpc://localhost:8500"


@dataclass(frozen=True)
class ClientArgs:
    server: str
    model: str
    version: int | None
    version_label: str | None
    timeout: float
    attempts: int
    root_cert: Path | None
    as_json: bool


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--server", default=DEFAULT_SERVER,
                        help="grpc://host:port, grpcs://host:port (TLS), http://host:port or https://... "
                             f"(default {DEFAULT_SERVER})")
    parser.add_argument("--model", default=contract.DEFAULT_MODEL_NAME, help="served model name (default mnist)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--version", type=int, help="model version (default: the latest)")
    group.add_argument("--version-label", help="model version label, e.g. stable")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--attempts", type=int, default=4,
                        help="tries when the server is unavailable, with backoff (default 4)")
    parser.add_argument("--root-cert", type=Path,
                        help="PEM root certificate(s) to trust: gRPC TLS roots, or the HTTPS CA bundle")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print JSON for machines")
    if name == "predict":
        parser.add_argument("images", nargs="+", type=Path,
                            help="image files (PNG, JPEG...; preprocessed to MNIST form) or .npy arrays")
        parser.add_argument("--api", choices=("predict", "classify"), default="predict",
                            help="TF Serving API to call (default predict)")
        parser.add_argument("--signature", help="signature name (default predict_images / serving_default)")
        parser.add_argument("--top", type=int, default=3, help="labels to show per image (default 3)")


def run(args: argparse.Namespace) -> int:
    options = _client_args(args)
    if args.command == "predict":
        return _predict(args, options)
    if args.command == "status":
        return _status(options)
    if args.command == "metadata":
        return _metadata(options)
    raise UsageError(f"unknown client command '{args.command}'")


def _client_args(args: argparse.Namespace) -> ClientArgs:
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    if args.attempts < 1:
        raise UsageError(f"--attempts must be at least 1, got {args.attempts}")
    return ClientArgs(args.server, args.model, args.version, args.version_label, args.timeout,
                      args.attempts, args.root_cert, args.as_json)


def _connect(options: ClientArgs):
    from tfship.clients import GrpcClient, RestClient, RetryPolicy

    common = dict(version=options.version, version_label=options.version_label, timeout=options.timeout,
                  retry=RetryPolicy(attempts=options.attempts))
    if options.server.startswith(("http://", "https://")):
        verify = str(options.root_cert) if options.root_cert else True
        return RestClient(options.server, options.model, verify=verify, **common)
    return GrpcClient(options.server, options.model, root_certificates=options.root_cert, **common)


def _load_inputs(paths: list[Path]):
    """Every image, read before any request is sent: a bad file fails fast, naming itself."""
    import numpy as np

    from tfship.clients.errors import ImageError
    from tfship.clients.images import from_array, load_image

    names, rows = [], []
    for path in paths:
        if path.suffix.lower() == ".npy":
            try:
                batch = from_array(np.load(path, allow_pickle=False))
            except (OSError, ValueError) as e:
                raise ImageError(f"cannot read array file '{path}': {e}") from e
            except ImageError as e:
                raise ImageError(f"'{path}': {e}") from e
            names += [f"{path}[{i}]" for i in range(batch.shape[0])]
            rows.append(batch)
        else:
            names.append(str(path))
            rows.append(load_image(path)[np.newaxis, :])
    return names, np.concatenate(rows)


def _predict(args: argparse.Namespace, options: ClientArgs) -> int:
    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    names, batch = _load_inputs(args.images)
    with _connect(options) as client:
        if args.api == "classify":
            result = client.classify(batch, signature=args.signature or contract.CLASSIFY_SIGNATURE)
        else:
            result = client.predict(batch, signature=args.signature or contract.PREDICT_SIGNATURE)
    ranked = result.top_k(args.top)
    if options.as_json:
        _print_json({"server": options.server, "model": result.model, "version": result.version,
                     "predictions": [{"image": name, "label": top[0].label, "confidence": top[0].score,
                                      "top": [asdict(r) for r in top]} for name, top in zip(names, ranked)]})
        return 0
    width = max(len(n) for n in names)
    for name, top in zip(names, ranked):
        others = ", ".join(f"{r.label} {r.score:.1%}" for r in top)
        print(f"{name:<{width}}  {top[0].label}  ({top[0].score:.1%})   top {len(top)}: {others}")
    return 0


def _status(options: ClientArgs) -> int:
    with _connect(options) as client:
        status = client.status()
    if options.as_json:
        _print_json({"server": options.server, "model": status.model,
                     "versions": [asdict(v) for v in status.versions]})
        return 0
    for v in status.versions:
        error = "" if v.error_code == "OK" else f"  {v.error_code}: {v.error_message}"
        print(f"{status.model}  version {v.version}  {v.state}{error}")
    return 0


def _metadata(options: ClientArgs) -> int:
    with _connect(options) as client:
        metadata = client.metadata()
    if options.as_json:
        _print_json({"server": options.server, "model": metadata.model, "version": metadata.version,
                     "signatures": {name: asdict(sig) for name, sig in metadata.signatures.items()}})
        return 0
    print(f"{metadata.model}  version {metadata.version}")
    for name, sig in metadata.signatures.items():
        if name.startswith("__"):  # SavedModel internals such as __saved_model_init_op (kept in --json)
            continue
        print(f"  signature {name}  ({sig.method_name})")
        for kind, tensors in (("in ", sig.inputs), ("out", sig.outputs)):
            for tensor_name, spec in tensors.items():
                shape = "unknown rank" if spec.shape is None else "[" + ", ".join(map(str, spec.shape)) + "]"
                print(f"    {kind} {tensor_name}: {spec.dtype} {shape}")
    return 0


def _print_json(data: dict) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
