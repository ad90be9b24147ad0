"""MNIST from the four original IDX ``.gz`` files, verified by sha256. No TensorFlow needed.

Where the files are looked for, in order: an explicit ``data_dir``; ``$TFSHIP_MNIST_DIR``;
``~/.cache/tfship/mnist``. A missing file may be downloaded into the cache folder only when the
caller allows it (the CLI's ``--download``); tests never download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfship.errors import DataError

ENV_VAR = "TFSHIP_MNIST_DIR"
CACHE_DIR = Path("~/.cache/tfship/mnist")
# The dataset's long-standing public mirror (the one torchvision and TF's tutorials use).
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass(frozen=True)
class MnistFile:
    name: str
    sha256: str
    size: int


# Hashes of the canonical files, as published with torchvision's mirror list (see SOURCE.md).
FILES = {
    "train_images": MnistFile("train-images-idx3-ubyte.gz",
                              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train_labels": MnistFile("train-labels-idx1-ubyte.gz",
                              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "test_images": MnistFile("t10k-images-idx3-ubyte.gz",
                             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "test_labels": MnistFile("t10k-labels-idx1-ubyte.gz",
                             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}


@dataclass(frozen=True)
class Split:
    """Images as uint8 (N, 28, 28) and labels as uint8 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def flat_float(self) -> np.ndarray:
        """Images as float32 (N, 784) in [0, 1]: the contract's ``images`` input."""
        return (self.images.reshape(len(self.images), -1).astype(np.float32) / 255.0)


@dataclass(frozen=True)
class Mnist:
    train: Split
    test: Split
    directory: Path
    hashes: dict[str, str]


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder MNIST is read from: explicit argument, else $TFSHIP_MNIST_DIR, else the cache."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return CACHE_DIR.expanduser()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(directory: Path, spec: MnistFile) -> Path:
    """Return the path of a verified file, or raise DataError saying which file and how to fix it."""
    path = directory / spec.name
    fix = (f"put the original file there (or point --data-dir / ${ENV_VAR} at a folder holding the "
           f"four MNIST .gz files), or run with --download on a machine with internet")
    if not path.is_file():
        raise DataError(f"MNIST file '{path}' is missing; {fix}")
    actual = sha256_of(path)
    if actual != spec.sha256:
        size = path.stat().st_size
        what = "truncated" if size < spec.size else "corrupt"
        raise DataError(
            f"MNIST file '{path}' is {what}: sha256 {actual} ({size} bytes), expected {spec.sha256} "
            f"({spec.size} bytes); delete it and {fix}")
    return path


def download_missing(directory: Path) -> None:
    """Fetch missing files from the public mirror into ``directory``, verifying each one."""
    directory.mkdir(parents=True, exist_ok=True)
    for spec in FILES.values():
        target = directory / spec.name
        if target.is_file():
            continue
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".part") as tmp:
            try:
                with urllib.request.urlopen(MIRROR + spec.name, timeout=60) as response:
                    shutil.copyfileobj(response, tmp)
            except OSError as e:
                os.unlink(tmp.name)
                raise DataError(f"could not download {spec.name} from {MIRROR}: {e}") from e
        os.replace(tmp.name, target)
        verify_file(directory, spec)


def _read_idx(path: Path, expected_magic: int, expected_dims: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        raise DataError(f"'{path}' is not an IDX file of the expected kind (magic {magic:#x}, "
                        f"expected {expected_magic:#x})")
    dims = struct.unpack(">" + "I" * expected_dims, raw[4:4 + 4 * expected_dims])
    offset = 4 + 4 * expected_dims
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if data.size != int(np.prod(dims)):
        raise DataError(f"'{path}' holds {data.size} values, its header says {dims}")
    return data.reshape(dims)


def load(directory: str | os.PathLike | None = None, download: bool = False) -> Mnist:
    """Load and verify MNIST. ``download=True`` fetches missing files into the folder first."""
    folder = data_dir(directory)
    if download:
        download_missing(folder)
    paths = {key: verify_file(folder, spec) for key, spec in FILES.items()}
    train = Split(_read_idx(paths["train_images"], 0x803, 3), _read_idx(paths["train_labels"], 0x801, 1))
    test = Split(_read_idx(paths["test_images"], 0x803, 3), _read_idx(paths["test_labels"], 0x801, 1))
    return Mnist(train=train, test=test, directory=folder,
                 hashes={spec.name: spec.sha256 for spec in FILES.values()})
