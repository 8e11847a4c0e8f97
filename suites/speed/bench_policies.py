"""Categorical and CNN policies: every solver and both baselines at hidden width 256.

Policies (:func:`ratbench.speed.build_policy`): ``mlp-categorical`` (348
inputs, 17 actions), ``cnn-categorical`` and ``cnn-gaussian`` (3 x 32 x 32
frames through two strided Conv2d layers, 6 actions). Conv2d layers take
the curvature layer's unfolded-patch path, so these cases time it.
"""

from ratbench import speed as sp

from .common import BATCH_SIZES, DEVICES, prepare

POLICIES = ["mlp-categorical", "cnn-categorical", "cnn-gaussian"]
WIDTH = 256
METHODS = list(sp.METHODS)


class PolicyDirection:
    """Wall time of one direction or baseline run per policy."""

    params = [DEVICES, POLICIES, BATCH_SIZES, METHODS]
    param_names = ["device", "policy", "n", "method"]
    timeout = 900
    repeat = (2, 10, 30.0)

    def setup(self, device, policy, n, method):
        self.problem, self.run = prepare(policy, device, n, WIDTH, method)

    def time_direction(self, device, policy, n, method):
        self.run()


class PolicyDirectionMemory:
    """Peak resident memory of one run per policy on the CPU."""

    params = [POLICIES, BATCH_SIZES, METHODS]
    param_names = ["policy", "n", "method"]
    timeout = 900

    def setup(self, policy, n, method):
        self.problem, self.run = prepare(policy, "cpu", n, WIDTH, method)

    def peakmem_direction(self, policy, n, method):
        self.run()
