"""Benchmark mode (`pgvdrill bench`): backup and restore times over a dataset size sweep,
every mode, with ratios measured side by side in the same run."""

from pgvdrill.cli.bench import add_bench_parser, cmd_bench

__all__ = ["add_bench_parser", "cmd_bench"]
