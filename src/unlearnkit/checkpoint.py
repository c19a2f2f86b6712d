"""Checkpoints: weights in safetensors beside a JSON file of metadata.

The JSON records the model spec (to rebuild the architecture), what the caller
says produced the weights (training config, seed, hash of the training ids) and
library versions, plus the SHA-256 of the weights file so corruption is caught
on load. Both files are written to a temporary name and renamed into place, so
an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as from_bytes
from safetensors.torch import save as to_bytes
from torch import nn

from unlearnkit.errors import CheckpointError

FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it; put it straight back


def versions() -> dict[str, str]:
    """Versions of the libraries whose arithmetic a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    from unlearnkit import __version__

    out = {"unlearnkit": __version__, "torch": torch.__version__}
    for package in ("numpy", "scipy", "scikit-learn", "safetensors"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # not installed: say so rather than guess
            out[package] = "not installed"
    return out


def environment() -> dict:
    """What bit-identity of a result depends on beyond its inputs and seeds.

    CPU kernels may sum in another order with another thread count or library
    version, so a result records both (spec/evaluation.md, reproducibility).
    """
    import platform

    return {
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def atomic_write_bytes(path: Path, data: bytes, *, sync_directory: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The file is fsync'd before the rename and, with ``sync_directory``, the folder
    after it, so the new name survives a power cut. A writer of many files in one
    folder passes False and calls :func:`fsync_directory` once when they are done
    (one directory sync costs milliseconds; one per file would dominate small writes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes owner-only files; give the result the usual umask-based mode.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_directory:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename (or unlink) in ``directory`` durable: fsync the directory itself.

    A rename lives in the directory's entries; until they reach the disk a power cut
    can bring the old name back even though the file's bytes were synced.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms that cannot open a directory (Windows) keep rename semantics
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; nothing more can be done there
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_npz_state(path: str | os.PathLike, *, meta: dict, arrays: dict) -> Path:
    """Write JSON ``meta`` and NumPy ``arrays`` to one ``.npz`` file atomically.

    The state of the closed-form engines: plain arrays (no pickle) plus a JSON
    header stored as bytes under ``__meta__``. Returns the path (``.npz`` added).
    """
    import io

    import numpy as np

    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_npz_state(path: str | os.PathLike, *, what: str, fix: str) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a file written by :func:`save_npz_state`.

    ``what`` names the state in errors, ``fix`` says how to make a new one; a
    missing or damaged file is a :class:`~unlearnkit.errors.StoreError`.
    """
    import numpy as np

    from unlearnkit.errors import StoreError

    path = Path(path)
    if not path.is_file() and path.with_name(path.name + ".npz").is_file():
        path = path.with_name(path.name + ".npz")
    if not path.is_file():
        raise StoreError(f"no {what} at {path}; {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except Exception as exc:  # zip, npy header or JSON damage all mean the same to a user
        raise StoreError(f"{what} {path} is corrupt ({type(exc).__name__}: {exc}); {fix}") from None
    return meta, arrays


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


def exists(path: str | os.PathLike) -> bool:
    """Whether a checkpoint (either of its two files) is at ``path``."""
    return any(p.exists() for p in _paths(path))


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone makes each tensor its own.
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def save(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Save ``model`` to ``path`` (``.safetensors``) and its metadata beside it (``.json``).

    >>> import tempfile, unlearnkit as uk
    >>> m = uk.models.make("logreg", input_shape=(3,), num_outputs=2)
    >>> p = save(m, tempfile.mkdtemp() + "/m", metadata={"seed": 0})
    >>> loaded, meta = load(p, expect={"seed": 0})
    >>> meta["seed"], all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), m.state_dict().values()))
    (0, True)
    """
    weights_path, meta_path = _paths(path)
    spec = getattr(model, "spec", None)
    if spec is None:
        raise CheckpointError("only models built by unlearnkit.models.make can be saved")

    blob = to_bytes(state_tensors(model))
    meta = {
        "format_version": FORMAT_VERSION,
        "model": spec,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "versions": versions(),
        **(metadata or {}),
    }
    # Weights first: a crash between the two renames leaves a JSON whose hash does
    # not match, which load() reports as a corrupt checkpoint instead of using it.
    atomic_write_bytes(weights_path, blob)
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True))
    return weights_path


def read_metadata(path: str | os.PathLike) -> dict:
    _, meta_path = _paths(path)
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint metadata {meta_path} is missing")
    try:
        return json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint metadata {meta_path} is corrupt ({exc}); delete it"
        ) from None


def load(path: str | os.PathLike, *, expect: dict | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint; verify its hash and that its metadata contains ``expect``."""
    from unlearnkit.models import from_spec

    weights_path, meta_path = _paths(path)
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint {weights_path} does not exist")
    meta = read_metadata(weights_path)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {weights_path} has format {meta.get('format_version')}, newer than "
            f"this unlearnkit reads ({FORMAT_VERSION}); upgrade unlearnkit"
        )
    blob = weights_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
        raise CheckpointError(
            f"checkpoint {weights_path} is corrupt (its hash does not match {meta_path.name}); "
            "delete both files to retrain"
        )
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            raise CheckpointError(
                f"checkpoint {weights_path} does not match: {key} is {meta.get(key)!r}, "
                f"expected {value!r}; delete it or use another output folder"
            )
    try:
        tensors = from_bytes(blob)
        model = from_spec(meta["model"])
        model.load_state_dict(tensors)
    except (SafetensorError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {weights_path} cannot be loaded: {exc}") from None
    return model, meta


__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_directory",
    "load",
    "load_npz_state",
    "read_metadata",
    "save",
    "save_npz_state",
]
