"""Accuracy of the iterative solvers after a fixed budget, tracked beside the timings.

``track_relative_error`` is ``||d - d_ref|| / ||d_ref||`` for the float32
solver at its fixed budget (:func:`ratbench.benchmarking.speed.accuracy_options`:
kaczmarz two sweeps in blocks of N/4, cg 10 iterations) against woodbury on
a float64 copy of the same minibatch, on the Humanoid-sized Gaussian MLP.
A jump in this history is an accuracy regression.
"""

from ratbench.benchmarking import speed as sp

from .common import skip_unless_runnable

POLICY = "mlp-gaussian"


class IterativeAccuracy:
    params = [["kaczmarz", "cg"], [256, 1024], [64, 256]]
    param_names = ["solver", "n", "width"]
    timeout = 600
    unit = "relative error"

    def setup(self, solver, n, width):
        skip_unless_runnable("cpu", n, width)
        self.problem = sp.build_problem(n, width, POLICY, "cpu")

    def track_relative_error(self, solver, n, width):
        return sp.relative_error_vs_woodbury(self.problem, solver)
