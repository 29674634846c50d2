"""The code contract: how relaxed, binary and stored codes look everywhere in the library.

    relaxed codes   u in (-1, 1)^c      float tensors, u = tanh(W f + b) (what a network outputs)
    binary codes    b in {-1, +1}^c     b = sign(u) with sign(0) := +1, everywhere:
                                        ``binarize`` -> int8 numpy arrays (encode, baselines, storage),
                                        ``hard_sign`` -> float tensors of the same dtype (solver, CAM
                                        targets, losses), so no caller ever re-binarizes a 0
    stored codes    ceil(c / 64) uint64 words per code: bit j of the code is bit (j mod 64) of word
                    j // 64, set where b_j = +1; padding bits are 0. One file format
                    (``save_codes`` / ``load_codes``, a .npz with ``words`` and ``bits``) is used by
                    HammingIndex, run folders and the explorer bundle; the bit count is stored and
                    checked on load, and so are the padding bits.

The Hamming distance of two codes is  d_H(b, b') = popcount(w XOR w') = (c - b.b') / 2.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import BadFile, BadOption, BadOptionType, MissingFile
from ..files import atomic_write

WORD_BITS = 64
CODES_FORMAT = 1


def hard_sign(u):
    """sign(u) with sign(0) := +1 as a float tensor of u's dtype (float32 for integer input)."""
    import torch

    dtype = u.dtype if u.is_floating_point() else torch.float32
    return torch.where(u >= 0, 1.0, -1.0).to(dtype)


def binarize(u) -> np.ndarray:
    """Binary codes of relaxed codes ``u`` (tensor or array): sign with ties to +1, int8 +-1."""
    if hasattr(u, "detach"):
        u = u.detach().float().cpu().numpy()
    return np.where(np.asarray(u) >= 0, 1, -1).astype(np.int8)


def as_sign_array(codes, name: str = "codes") -> np.ndarray:
    """``codes`` (numpy array or torch tensor, n x c) as an int8 numpy array of +-1 values."""
    if hasattr(codes, "detach"):
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise BadOption(f"{name} must be a 2-D array (n x bits), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise BadOption(f"{name} have no bits (shape {arr.shape}): a code needs at least one bit")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise BadOptionType(f"{name} must hold the numbers -1 and +1, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (-1, 1)).all():
        bad = arr[~np.isin(arr, (-1, 1))].ravel()[:3]
        raise BadOption(f"{name} must hold only -1 and +1 (use fgh_tutorial.retrieval.binarize), found {bad}")
    return arr.astype(np.int8, copy=False)


def n_words(bits: int) -> int:
    return -(-int(bits) // WORD_BITS)


def pack_codes(codes) -> np.ndarray:
    """Pack +-1 codes (n x c) into uint64 words (n x ceil(c/64)), padding bits 0."""
    signs = as_sign_array(codes)
    n, c = signs.shape
    words = n_words(c)
    bits = np.zeros((n, words * WORD_BITS), dtype=np.uint8)
    bits[:, :c] = signs > 0
    # little-endian bit order inside each byte, bytes in little-endian word order
    packed = np.packbits(bits.reshape(n, words, 8, 8), axis=-1, bitorder="little")
    return np.ascontiguousarray(packed.reshape(n, words * 8)).view("<u8").astype(np.uint64, copy=False)


def check_words(words, name: str = "words", bits: int | None = None) -> np.ndarray:
    """``words`` as a 2-D uint64 array; with ``bits``, also its width and zero padding bits."""
    if hasattr(words, "detach"):
        words = words.detach().cpu().numpy()
    arr = np.asarray(words)
    if arr.dtype != np.uint64:
        raise BadOptionType(f"{name} must be uint64 words from pack_codes, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise BadOption(f"{name} must be 2-D (n x words), got shape {arr.shape}")
    if bits is not None:
        if int(bits) < 1:
            raise BadOption(f"{name}: codes of {bits} bits: a code needs at least one bit")
        if arr.shape[1] != n_words(bits):
            raise BadOption(f"{name}: {bits}-bit codes take {n_words(bits)} words, got {arr.shape[1]}")
        spare = n_words(bits) * WORD_BITS - bits
        if spare and len(arr) and (arr[:, -1] >> np.uint64(WORD_BITS - spare)).any():
            raise BadOption(f"{name}: padding bits above bit {bits} are set; these are not {bits}-bit codes")
    return arr


def unpack_codes(words, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: uint64 words (n x w) -> +-1 int8 codes (n x bits)."""
    words = check_words(words, "words")
    if not 1 <= int(bits) <= WORD_BITS * words.shape[1]:
        raise BadOption(f"bits must be in 1..{WORD_BITS * words.shape[1]} for {words.shape[1]} words, got {bits}")
    n = words.shape[0]
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8).reshape(n, 8 * words.shape[1])
    b = np.unpackbits(raw, axis=1, bitorder="little")[:, :bits]
    return (2 * b.astype(np.int8) - 1).astype(np.int8)


def save_codes(path, words, bits: int, **arrays) -> Path:
    """Write packed codes (and optional extra arrays, e.g. ``labels``) atomically to ``path`` (.npz)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    words = check_words(words, "words", bits)
    buf = io.BytesIO()
    np.savez(buf, words=words, bits=np.int64(bits), format=np.int64(CODES_FORMAT), **arrays)
    return atomic_write(path, buf.getbuffer())


def load_codes(path, bits: int | None = None) -> tuple[np.ndarray, int, dict]:
    """(words, bits, extra arrays) of a file written by :func:`save_codes`; never unpickles.
    A file that is truncated, of another kind or with a malformed field is a ``BadFile`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"no codes file at {path}" if not path.is_dir() else f"{path} is a folder, not a codes file")
    what = f"{path} is not a codes file (.npz with 'words' and 'bits')"
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):
            raise ValueError("a single array, not an .npz archive")
        with f:
            data = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise BadFile(f"{what}: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__}; it may be "
                      "truncated or damaged: write it again") from None
    if "words" not in data or "bits" not in data:
        raise BadFile(f"{what}: it has no {'words' if 'words' not in data else 'bits'} field")
    field = data.pop("bits")
    if field.shape != () or not np.issubdtype(field.dtype, np.integer) or not 1 <= int(field) <= 1 << 20:
        raise BadFile(f"{what}: its 'bits' field must be one positive integer, got {field.dtype} of shape {field.shape}")
    stored = int(field)
    data.pop("format", None)
    if bits is not None and stored != int(bits):
        raise BadFile(f"{path} holds {stored}-bit codes, expected {bits}")
    try:
        words = check_words(data.pop("words"), f"{path}: words", stored)
    except BadOption as err:  # the file's content, not the caller's argument
        raise BadFile(str(err)) from None
    return words, stored, data
