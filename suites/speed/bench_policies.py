"""Categorical and CNN policies: every solver and both baselines at hidden width 256.

Policies (:func:`ratbench.benchmarking.speed.build_policy`): ``mlp-categorical`` (348
inputs, 17 actions), ``cnn-categorical`` and ``cnn-gaussian`` (3 x 32 x 32
frames through two strided Conv2d layers, 6 actions). Their convs keep
per-sample gradients in the curvature layer (``keeps_per_sample_scores``);
the Nature CNN's third conv below takes the unfolded-patch path.

Pixel workloads (``FrameDirection``): ``nature-cnn`` (4 x 84 x 84 uint8 frames, the DQN Nature CNN,
512 units) and ``minatar-cnn`` (4 x 10 x 10, MinAtar's network) for the vanilla baseline and the two
Gram-route solvers (issue 12's target: woodbury <= 10x vanilla on the Nature CNN at N = 1,024).
"""

from ratbench.benchmarking import speed as sp

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


FRAME_POLICIES = list(sp.FRAME_POLICIES)
FRAME_METHODS = ["vanilla", "woodbury", "kaczmarz"]
FRAME_BATCH_SIZES = [256, 1024]


class FrameDirection(PolicyDirection):
    """Wall time of one direction or vanilla backward on the pixel workloads."""

    params = [DEVICES, FRAME_POLICIES, FRAME_BATCH_SIZES, FRAME_METHODS]
    repeat = (2, 5, 60.0)


class FrameDirectionMemory(PolicyDirectionMemory):
    """Peak resident memory of one run on the pixel workloads (the Nature CNN's target: < 4 GiB)."""

    params = [FRAME_POLICIES, FRAME_BATCH_SIZES, FRAME_METHODS]
