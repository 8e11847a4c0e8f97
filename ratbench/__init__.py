"""ratbench: a verification-focused benchmark suite for natural policy gradients."""

from ratbench.errors import RatbenchError
from ratbench.problem import NPGProblem

__all__ = ["NPGProblem", "RatbenchError"]
__version__ = "0.1.0"
