"""ratbench: a verification-focused benchmark suite for natural policy gradients."""

from ratbench.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch starts its OpenMP pool (see ratbench.threads)

from ratbench.errors import RatbenchError  # noqa: E402
from ratbench.problem import NPGProblem, ValueTerm  # noqa: E402

__all__ = ["NPGProblem", "RatbenchError", "ValueTerm"]
__version__ = "0.1.0"
