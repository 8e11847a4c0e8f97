"""The accuracy suite: seeded problem families, solver contracts and the runner behind ``ratbench accuracy``."""
