"""Names the CLI offers as choices (split methods, evaluation modes, precisions), kept here, free of
heavy imports, so that building a command's ``--help`` never imports torch or pandas. The modules that
implement them import these tuples from here (one source of truth)."""

SPLIT_METHODS = ("leave-last-out", "given", "temporal")
EVAL_MODES = ("full", "sampled", "tutorial")
EVAL_SPLITS = ("test", "validation")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
