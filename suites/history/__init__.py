"""asv benchmarks of the committed speed and accuracy history (asv.history.conf.json; ratbench history)."""
