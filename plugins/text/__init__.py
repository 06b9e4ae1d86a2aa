"""The built-in text plugin: SFT and DPO of causal language models (transformers + peft).

Registered like any third-party plugin, through the ``framework.plugins`` entry point
(``text = "plugins.text.plugin"``). Public pieces:

* :class:`~plugins.text.modality.TextModality` (``+modality=text``, ``+modality=text_dpo``);
* :class:`~plugins.text.config.TextConfig`, :class:`~plugins.text.config.TextModelConfig`;
* :data:`~plugins.text.recipes.RECIPES`: the SFT and DPO recipes by ``modality.method``;
* :func:`~plugins.text.chat.encode_chat` (chat template + assistant-only mask);
* :func:`~plugins.text.task.dpo_loss` (sigmoid / IPO / hinge);
* ``python -m plugins.text.preview`` (rendered examples with the trained tokens marked).

Heavy imports (torch, transformers, peft) happen inside the submodules, not here.
"""
