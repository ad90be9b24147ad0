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
from tfship.clients.inputs import PREPROCESSING, VALUE_RANGES
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
    client_cert: Path | None = None
    client_key: Path | None = None


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
    parser.add_argument("--client-cert", type=Path,
                        help="PEM certificate of this client, for servers that verify clients (mutual TLS)")
    parser.add_argument("--client-key", type=Path, help="PEM private key of --client-cert")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print JSON for machines")
    if name == "predict":
        parser.add_argument("images", nargs="+", type=Path,
                            help="image files (PNG, JPEG...; made into the model's input form) or .npy arrays "
                                 "(raw tensors)")
        parser.add_argument("--api", choices=("predict", "classify"), default="predict",
                            help="TF Serving API to call (default predict)")
        parser.add_argument("--signature", help="signature name (default: serving_default if it takes images, "
                                                "else the one predict signature that does; classify: serving_default)")
        parser.add_argument("--input", dest="input_name", help="input name (default: the signature's only input)")
        parser.add_argument("--output", dest="output_name",
                            help="output holding the scores (default: the signature's float [N, K] output)")
        parser.add_argument("--range", dest="value_range", choices=tuple(VALUE_RANGES),
                            help="pixel values sent for image files: 0..1 (v/255), 0..255, -1..1 (v/127.5-1); "
                                 "default 0..1 for float inputs, 0..255 for integer inputs")
        parser.add_argument("--preprocess", choices=PREPROCESSING, default="auto",
                            help="image files: mnist (crop, fit 20 px, centre by mass in 28x28), resize (to the "
                                 "input's H x W), or auto: mnist for 28x28x1 / 784 inputs, else resize")
        parser.add_argument("--labels", type=Path, help="text file of class names, one per line, for models "
                                                        "without labels of their own (default: indices)")
        parser.add_argument("--top", type=int, default=3, help="labels to show per image (default 3)")
        _accept_negative_range(parser)


def _accept_negative_range(parser: argparse.ArgumentParser) -> None:
    """Let ``--range -1..1`` through: argparse takes any word starting with '-' that is not a number for
    an option. Its number pattern is a parser attribute; where it is missing, ``--range=-1..1`` works."""
    import re

    matcher = getattr(parser, "_negative_number_matcher", None)
    if matcher is not None:
        parser._negative_number_matcher = re.compile(f"{matcher.pattern}|^-1\\.\\.1$")


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
    if (args.client_cert is None) != (args.client_key is None):
        raise UsageError("--client-cert and --client-key go together (mutual TLS needs both)")
    return ClientArgs(args.server, args.model, args.version, args.version_label, args.timeout,
                      args.attempts, args.root_cert, args.as_json, args.client_cert, args.client_key)


def _connect(options: ClientArgs, labels: list[str] | None = None):
    from tfship.clients import GrpcClient, RestClient, RetryPolicy

    common = dict(version=options.version, version_label=options.version_label, timeout=options.timeout,
                  retry=RetryPolicy(attempts=options.attempts), labels=labels)
    if options.server.startswith(("http://", "https://")):
        verify = str(options.root_cert) if options.root_cert else True
        return RestClient(options.server, options.model, verify=verify, client_certificate=options.client_cert,
                          client_key=options.client_key, **common)
    return GrpcClient(options.server, options.model, root_certificates=options.root_cert,
                      client_certificate=options.client_cert, client_key=options.client_key, **common)


def _check_files(paths: list[Path]) -> None:
    """Every input is read once before the server is asked anything: a bad file fails fast, naming
    itself (how it becomes a tensor depends on the model, so it is converted after the metadata)."""
    from tfship.clients.images import decode_image
    from tfship.clients.inputs import load_npy

    for path in paths:
        load_npy(path) if path.suffix.lower() == ".npy" else decode_image(path, "RGB")


def _read_labels(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise UsageError(f"cannot read labels file '{path}': {e.strerror}") from e


def _mnist_rows(paths: list[Path]):
    """Classify's inputs: tf.Examples with MNIST's 784 floats (images preprocessed, arrays as they are)."""
    import numpy as np

    from tfship.clients.errors import ImageError
    from tfship.clients.images import from_array, load_image
    from tfship.clients.inputs import load_npy

    names, rows = [], []
    for path in paths:
        if path.suffix.lower() == ".npy":
            try:
                batch = from_array(load_npy(path))
            except ImageError as e:
                raise ImageError(f"'{path}': {e}") from e
            names += [f"{path}[{i}]" for i in range(batch.shape[0])]
            rows.append(batch)
        else:
            names.append(str(path))
            rows.append(load_image(path)[np.newaxis, :])
    return names, np.concatenate(rows)


def _predict(args: argparse.Namespace, options: ClientArgs) -> int:
    from tfship.clients.inputs import InputOptions, encode_items

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    _check_files(args.images)
    inputs = InputOptions(args.value_range, args.preprocess)
    labels = _read_labels(args.labels)
    with _connect(options, labels) as client:
        if args.api == "classify":
            names, batch = _mnist_rows(args.images)
            result = client.classify(batch, signature=args.signature or contract.CLASSIFY_SIGNATURE)
        else:
            plan = client.plan(args.signature, args.input_name, args.output_name)
            names, batch, form = encode_items(list(args.images), plan, inputs)
            result = client.predict_tensor(batch, plan, form)
    ranked = result.top_k(args.top)
    if options.as_json:
        _print_json({"server": options.server, "model": result.model, "version": result.version,
                     "input": asdict(result.input) if result.input else None, "labels_from": result.labels_from,
                     "predictions": [{"image": name, "label": top[0].label, "confidence": top[0].score,
                                      "top": [asdict(r) for r in top]} for name, top in zip(names, ranked)]})
        return 0
    version = f" version {result.version}" if result.version is not None else ""
    if result.input is not None:
        print(f"# {result.model}{version}: {result.input.describe()}; labels: {result.labels_from}")
    width = max(len(n) for n in names)
    score = score_format(result.scores)
    for name, top in zip(names, ranked):
        others = ", ".join(f"{r.label} {score.format(r.score)}" for r in top)
        print(f"{name:<{width}}  {top[0].label}  ({score.format(top[0].score)})   top {len(top)}: {others}")
    return 0


def score_format(scores) -> str:
    """Probabilities print as percentages; other scores (logits) as the numbers they are."""
    import numpy as np

    finite = scores[np.isfinite(scores)]
    return "{:.1%}" if finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0) else "{:.4g}"


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
    choice = _predict_choice(metadata)
    if options.as_json:
        _print_json({"server": options.server, "model": metadata.model, "version": metadata.version,
                     "signatures": {name: asdict(sig) for name, sig in metadata.signatures.items()},
                     "predict": choice})
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
    if "error" in choice:
        print(f"tfship predict: {choice['error']}")
    else:
        image = f"{choice['image']} images, " if choice["image"] else "arrays only, "
        print(f"tfship predict uses: signature '{choice['signature']}', input '{choice['input']}' ({image}"
              f"{choice['dtype']}), scores '{choice['scores']}', labels "
              + (f"'{choice['labels']}'" if choice["labels"] else "from indices"))
    return 0


def _predict_choice(metadata) -> dict:
    """What ``tfship predict`` would send to this model, or why it cannot choose."""
    from tfship.clients.signatures import plan_predict
    from tfship.errors import SignatureError

    try:
        plan = plan_predict(metadata)
    except SignatureError as e:
        return {"error": str(e)}
    return {"signature": plan.signature, "input": plan.input_name, "dtype": plan.dtype.name,
            "image": plan.layout.describe() if plan.layout else None, "scores": plan.scores, "labels": plan.labels}


def _print_json(data: dict) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
