"""Speed measurement: the synthetic workloads and methods of ``ratbench speed`` and asv (:mod:`.speed`),
and the timer with its memory sampler (:mod:`.measure`)."""
