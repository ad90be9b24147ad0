"""``tfship train``: parse arguments into a TrainConfig and run it. TensorFlow is imported in ``run``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfship.train.models import ARCHS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=ARCHS, default="cnn", help="model architecture (default: cnn)")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<arch>)")
    parser.add_argument("--epochs", type=int, help="epochs (default: per architecture)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: per architecture)")
    parser.add_argument("--learning-rate", type=float, help="initial Adam learning rate (cosine-decayed)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, dropout and data order")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the four MNIST .gz files (default: $TFSHIP_MNIST_DIR, "
                             "else ~/.cache/tfship/mnist)")
    parser.add_argument("--download", action="store_true",
                        help="download missing MNIST files into the data folder (needs internet)")
    parser.add_argument("--train-limit", type=int, help="train on the first N training images only")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from tfship.train.trainer import TrainConfig, train

    config = TrainConfig(arch=args.arch, out=args.out or Path("runs") / args.arch, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                         data_dir=args.data_dir, download=args.download, train_limit=args.train_limit,
                         plots=not args.no_plots)
    result = train(config)
    print(f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) after "
          f"{result.seconds:.0f} s of training")
    print(f"SavedModel: {result.model.path}")
    print(f"metrics: {result.metrics_path}")
    return 0
