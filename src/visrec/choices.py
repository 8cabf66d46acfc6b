"""Names the CLI offers as choices (split methods, evaluation splits, precisions), kept here, free of
heavy imports, so that building a command's ``--help`` never imports torch or pandas. The modules that
implement them import these tuples from here (one source of truth)."""

COLD_SPLIT_METHODS = ("cold-items", "cold-items-temporal")
SPLIT_METHODS = ("leave-last-out", "given", "temporal", *COLD_SPLIT_METHODS)
EVAL_SPLITS = ("test", "validation")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("torch", "onnx")
"""Inference backends of `visrec extract` (visrec.features.onnx_backend)."""
EVAL_MODES = ("full", "sampled", "tutorial", "cold", "mixed")
DEFAULT_METRICS = ("AUC", "RR", "R", "P", "nDCG")
METRICS = ("AUC", "RR", "R", "P", "nDCG", "MAP", "HR", "coverage", "diversity", "novelty")
"""The built-in metrics of visrec.evaluation.registry, in its order (a test checks they agree)."""
INDEX_KINDS = ("exact", "faiss")
"""Top-k search of `visrec recommend` / `visrec serve --index` (visrec.serving.index)."""
TUNE_SAMPLERS = ("tpe", "random", "grid")
"""Samplers of `visrec tune` and the benchmark's search block (visrec.tuning.study)."""
