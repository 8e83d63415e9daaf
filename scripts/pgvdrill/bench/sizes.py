"""Dataset sizes of a benchmark sweep, written ROWSxDIM (e.g. 2000x64)."""

from __future__ import annotations

from dataclasses import dataclass

from pgvdrill.dataset import DatasetSpec
from pgvdrill.errors import ConfigError

DEFAULT_SIZES = "2000x64,20000x128"


@dataclass(frozen=True)
class Size:
    """One point of the sweep: a generated dataset of `rows` vectors of `dim` dimensions."""

    rows: int
    dim: int

    @property
    def key(self) -> str:
        return f"{self.rows}x{self.dim}"

    def spec(self) -> DatasetSpec:
        """The dataset recipe (which checks that the size is usable)."""
        return DatasetSpec(rows=self.rows, dim=self.dim)


def parse_size(text: str) -> Size:
    """`Size` from "ROWSxDIM"; `ConfigError` for anything else."""
    rows, sep, dim = text.strip().lower().partition("x")
    if not (sep and rows.isdigit() and dim.isdigit()):
        raise ConfigError(f"size {text!r} is not ROWSxDIM", "write e.g. 2000x64 or 100000x768")
    size = Size(int(rows), int(dim))
    size.spec()
    return size


def parse_sizes(text: str) -> list[Size]:
    """Comma-separated sizes, in the order given, each once."""
    sizes = [parse_size(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise ConfigError("no size given", f"write e.g. {DEFAULT_SIZES}")
    keys = [s.key for s in sizes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigError(f"size {', '.join(repeated)} given twice", "name each size once")
    return sizes
