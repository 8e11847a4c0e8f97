"""Problem families for the accuracy suite, training suite specs, and asv speed benchmarks."""
