"""The built-in alignment plugin: CLIP-style image-text contrastive training and a misalignment audit.

Registered like any third-party plugin, through the ``framework.plugins`` entry point
(``alignment = "plugins.alignment.plugin"``). Public pieces:

* :class:`~plugins.alignment.modality.AlignmentModality` (``+modality=alignment``);
* :class:`~plugins.alignment.config.AlignmentConfig`, :class:`~plugins.alignment.config.AlignmentModelConfig`;
* :class:`~plugins.alignment.task.AlignmentTask` (both towers, the loss, ``encode_images`` / ``encode_texts``);
* :func:`~plugins.alignment.loss.contrastive_loss` (symmetric InfoNCE, gathered across DDP ranks);
* :func:`~plugins.alignment.export.load_encoder` (a trained dual encoder from an export or checkpoint).

Images are decoded and augmented by :mod:`framework.media`, the same code the vision plugin uses.
Heavy imports (torch, timm, transformers) happen inside the submodules, not here.
"""
