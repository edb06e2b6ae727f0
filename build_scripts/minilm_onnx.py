"""all-MiniLM-L6-v2 on the desktop with onnxruntime: the browser embedder's twin.

Runs the very files the site serves (``.cache/model/``, made by
``build_scripts/fetch_model.py``) the way ``static/embedder.js`` runs them:
Hugging Face ``tokenizers`` on ``tokenizer.json`` (truncation at 256 tokens),
``model.onnx`` on onnxruntime (CPU), mean pooling over the attention mask,
L2 normalisation. No torch. Needs ``onnxruntime`` and ``tokenizers`` (both in
the ``test`` extra).

Used by the embedding tests (desktop reference vectors for the browser) and
by ``benchmarks/int8_model_quality.py``.

Example::

    from minilm_onnx import MiniLMOnnx
    model = MiniLMOnnx(".cache/model")
    vectors = model.embed(["hello world"])      # (1, 384) float32, unit norm
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIM = 384

#: Sentences whose desktop embeddings the browser is compared against. Mixed
#: lengths, punctuation, casing, digits, accents and one over-long text
#: (truncated at 256 tokens on both sides).
REFERENCE_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Buy milk, eggs and bread on the way home.",
    "Quarterly revenue grew 12% compared with last year.",
    "How do I reset my password?",
    "Die Katze schläft auf dem Sofa.",
    "Café crème and a croissant, s'il vous plaît!",
    "Meeting with Dr. O'Neil at 3:30pm re: the Q3 roadmap.",
    "PYTHON IS A PROGRAMMING LANGUAGE",
    "a",
    "Neural embeddings can be compressed into tiny sketches that still rank well.",
    "unbelievably untranslatable antidisestablishmentarianism",
    " ".join(["The history of the long sentence is itself rather long."] * 40),
]


class MiniLMOnnx:
    """Tokenizer + ONNX session of one model folder.

    Parameters
    ----------
    model_dir : str or Path
        Folder holding ``model.onnx`` and ``tokenizer.json``.
    threads : int, optional
        onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model_dir, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.model_dir / "model.onnx"), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text ([CLS] ... [SEP], at most 256 ids).

        Parameters
        ----------
        texts : list of str

        Returns
        -------
        list of list of int
        """
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def embed_ids(self, ids: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """Embed already tokenized texts (each batch padded to its longest row).

        Parameters
        ----------
        ids : list of list of int
        batch_size : int

        Returns
        -------
        numpy.ndarray
            (N, 384) float32, rows of unit norm.
        """
        out = np.zeros((len(ids), DIM), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))   # less padding
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for j, i in enumerate(rows):
                input_ids[j, :len(ids[i])] = ids[i]
                mask[j, :len(ids[i])] = 1
            (hidden,) = self.session.run(["last_hidden_state"], {
                "input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)})
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of ``texts``.

        Parameters
        ----------
        texts : list of str
        batch_size : int

        Returns
        -------
        numpy.ndarray
            (N, 384) float32.
        """
        return self.embed_ids(self.tokenize(texts), batch_size=batch_size)
