"""One module per ``ratbench`` subcommand (see :mod:`ratbench.cli`)."""
