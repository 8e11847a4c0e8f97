"""Training: env rollouts, GAE, npg (any solver) / ppo / pg updates, logging, checkpoints.

>>> from ratbench.training import resolve_config, Trainer
>>> config = resolve_config({"env": "cartpole", "steps": 20000})
>>> Trainer.create(config, logdir="runs/demo").train()
"""

from ratbench.training.config import resolve_config
from ratbench.training.trainer import Trainer

__all__ = ["Trainer", "resolve_config"]
