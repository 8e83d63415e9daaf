"""Seeded text, JSON and timestamps for the non-vector columns (no wall clock)."""

from __future__ import annotations

import numpy as np

from pgvdrill.dataset.data import Json, Times

WORDS = np.array([
    "vector", "index", "backup", "restore", "archive", "segment", "replica", "cluster",
    "query", "recall", "neighbour", "distance", "embedding", "table", "schema", "snapshot",
    "timeline", "checkpoint", "ledger", "account", "product", "catalogue", "search", "signal",
    "café", "naïve", "Zürich", "Straße", "façade", "smörgåsbord", "niño", "élan",
    "東京", "データ", "검색", "вектор", "поиск", "Ελλάδα", "مرحبا", "नमस्ते", "数据库", "🚀",
])
LANGUAGES = ("en", "de", "fr", "ja", "ko", "ru", "el", "ar", "hi", "zh")
SOURCES = ("wiki", "support", "catalogue", "forum", "manual", "crm")
EVENTS = ("login", "search", "view", "add_to_cart", "purchase", "refund", "logout")
DEVICES = ("web", "ios", "android", "api", "kiosk")
EPOCH = np.datetime64("2025-01-01T00:00:00", "us")
SPAN_US = 300 * 24 * 3600 * 10**6  # timestamps fall in the 300 days after EPOCH


def phrases(rng: np.random.Generator, n: int, low: int, high: int) -> list[str]:
    """n strings of low..high words each, first letter capitalised."""
    lengths = rng.integers(low, high + 1, size=n)
    picks = rng.integers(len(WORDS), size=(n, high))
    joined = (" ".join(WORDS[row[:k]]) for row, k in zip(picks, lengths, strict=True))
    return [s[0].upper() + s[1:] for s in joined]


def bodies(rng: np.random.Generator, n: int) -> list[str | None]:
    """Two sentences per row."""
    first, second = phrases(rng, n, 4, 12), phrases(rng, n, 3, 9)
    return [f"{a}. {b}." for a, b in zip(first, second, strict=True)]


def timestamps(rng: np.random.Generator, n: int) -> Times:
    """n instants in the 300 days after 2025-01-01 UTC, microsecond precision."""
    return EPOCH + rng.integers(SPAN_US, size=n).astype("timedelta64[us]")


def document_metadata(rng: np.random.Generator, n: int) -> list[Json]:
    langs = rng.integers(len(LANGUAGES), size=n)
    sources = rng.integers(len(SOURCES), size=n)
    tags = rng.integers(len(WORDS), size=(n, 2))
    versions = rng.integers(1, 20, size=n)
    reviewed = rng.random(n) < 0.5
    return [
        {"lang": LANGUAGES[lang], "source": SOURCES[src], "tags": WORDS[tag].tolist(),
         "version": int(ver), "reviewed": bool(rev)}
        for lang, src, tag, ver, rev in zip(langs, sources, tags, versions, reviewed,
                                            strict=True)
    ]


def events(rng: np.random.Generator, n: int) -> list[Json]:
    kinds = rng.integers(len(EVENTS), size=n)
    devices = rng.integers(len(DEVICES), size=n)
    amounts = rng.integers(0, 100_000, size=n)
    notes = rng.integers(len(WORDS), size=n)
    return [
        {"type": EVENTS[kind], "device": DEVICES[dev], "amount_cents": int(amount),
         "note": str(WORDS[note])}
        for kind, dev, amount, note in zip(kinds, devices, amounts, notes, strict=True)
    ]


def tag_lists(rng: np.random.Generator, n: int) -> list[list[str]]:
    """0..4 distinct tags per row."""
    counts = rng.integers(0, 5, size=n)
    shuffled = np.argsort(rng.random((n, len(WORDS))), axis=1)[:, :4]
    return [WORDS[row[:k]].tolist() for row, k in zip(shuffled, counts, strict=True)]
