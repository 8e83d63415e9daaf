"""Parsing pg_restore's listing into object identities."""
# ruff: noqa: W291  (pg_restore ends a line with a space when an item has no owner)

from __future__ import annotations

from pgvdrill.logical.archive import TocEntry, parse_toc

LISTING = """;
; Archive created at 2026-11-24 07:00:00 UTC
;     dbname: vector_db
;
3390; 0 0 ENCODING - ENCODING
3391; 0 0 STDSTRINGS - STDSTRINGS
2; 3079 16389 EXTENSION - vector 
3392; 0 0 COMMENT - EXTENSION vector 
219; 1259 16710 TABLE public documents postgres
220; 1259 16720 TABLE public documents archive postgres
3380; 0 16710 TABLE DATA public documents postgres
3230; 1259 16730 INDEX public documents_embedding_hnsw_cos postgres
3231; 2606 16740 CONSTRAINT public documents documents_pkey postgres
3232; 2606 16750 FK CONSTRAINT public items items_doc_fkey postgres
"""


def test_entries_are_identified_by_desc_schema_and_name() -> None:
    toc = parse_toc(LISTING)
    assert len(toc) == 10
    assert toc[2] == TocEntry(2, "EXTENSION", "-", "vector", "")
    assert toc[3].identity == ("COMMENT", "-", "EXTENSION vector")
    assert toc[6] == TocEntry(3380, "TABLE DATA", "public", "documents", "postgres")
    assert toc[8].identity == ("CONSTRAINT", "public", "documents documents_pkey")
    assert toc[9].desc == "FK CONSTRAINT"


def test_names_with_spaces_keep_them() -> None:
    tables = {e.name for e in parse_toc(LISTING) if e.desc == "TABLE"}
    assert tables == {"documents", "documents archive"}


def test_comment_lines_only_give_no_entries() -> None:
    assert parse_toc(";\n; nothing here\n") == ()
