"""Reporting: run directories -> the tables, figures and pages that state a verdict.

One module per job: :mod:`~ratbench.reporting.runs` finds and loads runs,
:mod:`~ratbench.reporting.methods` says which runs are one method and which seeds they hold,
:mod:`~ratbench.reporting.stats` computes the statistics (rliable for aggregate scores),
:mod:`~ratbench.reporting.published` holds numbers published by other harnesses, as data with sources,
:mod:`~ratbench.reporting.figures` draws, :mod:`~ratbench.reporting.pages` writes the page and files.
"""
