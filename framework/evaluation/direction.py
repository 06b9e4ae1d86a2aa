"""Which way is better for a metric, by its name: the one rule ``--compare``, the baseline
comparison and the retention cost share.

A leaf module (no framework imports), so evaluation and tracking both depend on it without
depending on each other.
"""

from __future__ import annotations

# Words that mark a metric where lower is better; every other metric is higher-is-better.
LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "mae", "mse", "rmse", "ece", "mce")


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better (losses, error rates), by its last
    ``/``-separated part: ``val/val_loss`` and ``retention/wer`` are, ``test/accuracy`` is not."""
    leaf = name.rsplit("/", 1)[-1].lower()
    return any(word in leaf for word in LOWER_IS_BETTER)
