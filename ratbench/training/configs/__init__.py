"""Shipped training configs (YAML, layered by ratbench.training.config)."""
