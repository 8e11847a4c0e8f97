"""asv benchmarks of ratbench's solvers (``asv.conf.json`` points here).

Modules: ``bench_direction`` (every solver and both baselines on the
Humanoid-sized Gaussian MLP grid), ``bench_policies`` (categorical and CNN
policies), ``bench_accuracy`` (relative error of the iterative solvers after a
fixed budget), ``bench_training`` (one training iteration on Hopper-v5).
The workloads and methods live in :mod:`ratbench.benchmarking.speed`, shared with
``ratbench speed``; :mod:`suites.speed.common` holds the asv glue.

Environment variable ``RATBENCH_ASV_LIGHT=1`` (used by CI) skips the heavy
sizes so a quick run of every benchmark stays within a few minutes on two
cores: see :func:`suites.speed.common.light_mode`.
"""
