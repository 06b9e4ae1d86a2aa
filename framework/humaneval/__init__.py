"""Blind human evaluation of a trained run, and an optional LLM judge (``python -m framework.humaneval``).

:mod:`~framework.humaneval.pairs` (sampling by slice, random sides, gold pairs, the key),
:mod:`~framework.humaneval.label_studio` (labelling config, import tasks, reading the export),
:mod:`~framework.humaneval.export`, :mod:`~framework.humaneval.results` (win/tie/loss with
intervals, agreement, gold accuracy, position bias), :mod:`~framework.humaneval.judge`, and
:mod:`~framework.humaneval.run_files` (results written back into the run's summary and report).
"""
