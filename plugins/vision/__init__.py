"""The built-in vision plugin: image classification with timm models.

Registered like any third-party plugin, through the ``framework.plugins`` entry point
(``vision = "plugins.vision.plugin"``). Public pieces:

* :class:`~plugins.vision.modality.VisionModality` (``+modality=vision``);
* :class:`~plugins.vision.config.VisionConfig`, :class:`~plugins.vision.config.VisionModelConfig`;
* :func:`~plugins.vision.predict.predict_folder` (batch prediction to CSV);
* :func:`~plugins.vision.export.load_task` (a trained classifier from an export or checkpoint).

Heavy imports (torch, timm, albumentations) happen inside the submodules, not here.
"""
