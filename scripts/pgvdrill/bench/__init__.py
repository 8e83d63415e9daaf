"""Benchmark mode (`pgvdrill bench`): backup and restore times over a dataset size sweep,
every mode, with ratios measured side by side in the same run."""
