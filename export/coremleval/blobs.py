"""ML Program weight files (``weights/weight.bin`` in an ``.mlpackage``) and the package layout.

Format (coremltools' MILBlob storage, read here without its C++ reader): a 64-byte file header, then
per blob 64 bytes of metadata (uint32 sentinel 0xDEADBEEF, uint32 storage dtype, uint64 size in
bytes, uint64 data offset, reserved) followed by the data, every record 64-byte aligned. A const
op's ``blobFileValue.offset`` points at the blob's metadata, not at its data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from tfship.export.coremleval.evaluator import CoremlEvalError

BLOB_SENTINEL = 0xDEADBEEF
# MILBlob storage dtype codes (coremltools' mlmodel/src/MILBlob/Blob/BlobDataType.hpp). 5 is
# bfloat16, which NumPy has no dtype for; newer codes (sub-byte, int32) are refused by read_blob.
BLOB_DTYPES = {1: np.float16, 2: np.float32, 3: np.uint8, 4: np.int8, 6: np.int16, 7: np.uint16}


def blob_metadata(weight_file: Path, offset: int) -> tuple[int, int, int]:
    """(storage dtype code, size in bytes, data offset) of the blob whose metadata is at ``offset``."""
    with open(weight_file, "rb") as f:
        f.seek(offset)
        head = f.read(24)
    if len(head) < 24:
        raise CoremlEvalError(f"'{weight_file}' is truncated: no blob metadata at offset {offset}")
    sentinel, dtype, size, data_offset = struct.unpack("<IIQQ", head)
    if sentinel != BLOB_SENTINEL:
        raise CoremlEvalError(f"'{weight_file}': no blob at offset {offset} (sentinel {sentinel:#x}, "
                              f"expected {BLOB_SENTINEL:#x}); the weight file does not match the model")
    return dtype, size, data_offset


def read_blob(weight_file: Path, offset: int) -> np.ndarray:
    """The flat array stored at ``offset`` of a MIL weight file."""
    dtype, size, data_offset = blob_metadata(weight_file, offset)
    if dtype not in BLOB_DTYPES:
        raise CoremlEvalError(f"'{weight_file}': blob at {offset} has storage type {dtype} "
                              f"(not one of {sorted(BLOB_DTYPES)}), which the evaluator does not read")
    with open(weight_file, "rb") as f:
        f.seek(data_offset)
        data = f.read(size)
    if len(data) != size:
        raise CoremlEvalError(f"'{weight_file}' is truncated in the blob at offset {offset}")
    return np.frombuffer(data, dtype=BLOB_DTYPES[dtype]).copy()


def model_dir(package: Path) -> Path:
    """The folder holding the package's root model (``@model_path`` in blob file names)."""
    manifest = json.loads((package / "Manifest.json").read_text(encoding="utf-8"))
    root = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]["path"]
    return (package / "Data" / root).parent
