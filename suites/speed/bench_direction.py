"""Every solver's direction and both baselines on the Humanoid-sized Gaussian MLP.

Policy: tanh MLP 348 -> width -> width -> 17 with a state-independent
log-std (:func:`ratbench.benchmarking.speed.build_policy`, ``mlp-gaussian``). The
``method`` parameter runs the solvers as configured for the speed targets
(:mod:`ratbench.benchmarking.speed`: kaczmarz = one block step over the minibatch,
kaczmarz-sweep = one sweep in blocks of 256, cg = 10 iterations) and the two
baselines (``vanilla``: a policy-gradient forward and backward;
``per-sample``: torch.func per-sample gradients, dense Gram and Cholesky),
so ratios can be read off one run. The per-sample route is skipped where J
would not fit (e.g. N=4096 with width 1024: P ~ 1.4M, N*P*4 bytes > 20 GiB).
"""

from ratbench.benchmarking import speed as sp

from .common import BATCH_SIZES, DEVICES, WIDTHS, cuda_peak_bytes, prepare

POLICY = "mlp-gaussian"
METHODS = list(sp.METHODS)


class Direction:
    """Wall time of one direction (capture pass included) or one baseline run."""

    params = [DEVICES, BATCH_SIZES, WIDTHS, METHODS]
    param_names = ["device", "n", "width", "method"]
    timeout = 900
    repeat = (2, 10, 30.0)

    def setup(self, device, n, width, method):
        self.problem, self.run = prepare(POLICY, device, n, width, method)

    def time_direction(self, device, n, width, method):
        self.run()


class DirectionMemory:
    """Peak resident memory (asv: the process's max RSS) of one run on the CPU."""

    params = [BATCH_SIZES, WIDTHS, METHODS]
    param_names = ["n", "width", "method"]
    timeout = 900

    def setup(self, n, width, method):
        self.problem, self.run = prepare(POLICY, "cpu", n, width, method)

    def peakmem_direction(self, n, width, method):
        self.run()


class DirectionGpuMemory:
    """Peak CUDA memory allocated by one run beyond the problem itself (skipped without a GPU)."""

    params = [BATCH_SIZES, WIDTHS, METHODS]
    param_names = ["n", "width", "method"]
    timeout = 900
    unit = "bytes"

    def setup(self, n, width, method):
        self.problem, self.run = prepare(POLICY, "cuda", n, width, method)

    def track_cuda_peak_bytes(self, n, width, method):
        return cuda_peak_bytes(self.run, self.problem.device)


class PrecisionRoutes:
    """woodbury in float32, float32 refined with float64 residuals (``refine``), and in float64, one run each
    (:data:`ratbench.benchmarking.speed.PRECISION_METHODS`): the cost of float64 accuracy from float32 work."""

    params = [BATCH_SIZES, WIDTHS, ["woodbury", *sp.PRECISION_METHODS]]
    param_names = ["n", "width", "method"]
    timeout = 900
    repeat = (2, 10, 30.0)

    def setup(self, n, width, method):
        self.problem, self.run = prepare(POLICY, "cpu", n, width, method)

    def time_direction(self, n, width, method):
        self.run()
