"""vector_use.uses: what of pgvector a dump's DDL names (types, index methods, operator
classes, operators, functions), read as pg_dump writes it."""

from __future__ import annotations

from pathlib import Path

from pgvdrill.logical.archive import Archive, TocEntry
from pgvdrill.logical.vector_use import describe, uses

DDL = """
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
CREATE TABLE public.documents (
    id bigint NOT NULL,
    embedding public.vector(64),
    embedding_half public.halfvec(64),
    features public.sparsevec(1000)
);
CREATE TABLE public.vector_items (id bigint, v public.vector(3));
CREATE VIEW public.nearest AS
 SELECT id FROM public.documents
  ORDER BY (embedding OPERATOR(public.<+>) '[1,2,3]'::public.vector);
CREATE INDEX half_hnsw ON public.documents USING hnsw (embedding_half public.halfvec_cosine_ops) \
WITH (m='16');
CREATE INDEX ivf ON public.documents USING ivfflat (public.l2_normalize(embedding) \
public.vector_l2_ops) WITH (lists='25');
CREATE INDEX documents_id ON public.documents USING btree (id);
"""


def archive(*names: tuple[str, str]) -> Archive:
    return Archive(Path("x.dump"), "custom", 1, "", tuple(
        TocEntry(i, desc, "public", name, "postgres") for i, (desc, name) in enumerate(names)))


def test_what_a_dump_uses_of_pgvector_is_read_from_its_ddl() -> None:
    own = archive(("TABLE", "documents"), ("TABLE", "vector_items"), ("VIEW", "nearest"))
    assert uses(DDL, own) == {
        ("type", "vector"), ("type", "halfvec"), ("type", "sparsevec"),
        ("index method", "hnsw"), ("index method", "ivfflat"),
        ("operator class", "halfvec_cosine_ops for hnsw"),
        ("operator class", "vector_l2_ops for ivfflat"),
        ("operator", "<+>"), ("function", "l2_normalize")}
    assert describe(frozenset({("type", "halfvec"), ("index method", "hnsw")})) == \
        "index method hnsw, type halfvec"


def test_a_dump_using_only_vector_needs_no_newer_pgvector_object() -> None:
    ddl = ("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA ext;\n"
           "CREATE TABLE public.t (v ext.vector(3));\n"
           "CREATE INDEX t_v ON public.t USING hnsw (v ext.vector_cosine_ops);\n"
           "CREATE TABLE public.halfvec_notes (halfvec text);\n")
    assert uses(ddl, archive(("TABLE", "t"))) == {
        ("type", "vector"), ("index method", "hnsw"),
        ("operator class", "vector_cosine_ops for hnsw")}


def test_every_operator_and_function_of_pgvector_counts_not_only_distances() -> None:
    """Concatenation (0.7), arithmetic, aggregates and pgvector's own helper functions are
    pgvector's too: each is named, so a target lacking it is refused before restoring; a
    name of another extension in the same schema is not pgvector's business."""
    ddl = ("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n"
           "CREATE VIEW public.doubled AS SELECT id, (embedding OPERATOR(public.||) embedding)"
           " AS e, (embedding OPERATOR(public.*) embedding) AS m FROM public.items;\n"
           "CREATE VIEW public.totals AS SELECT public.sum(embedding) AS s,"
           " public.vector_to_halfvec(embedding, 3, true) AS h FROM public.items;\n"
           "CREATE VIEW public.similar AS SELECT public.similarity(title, 'x') AS s,"
           " (title OPERATOR(public.%) 'x') AS m FROM public.items;\n"
           "CREATE INDEX i ON public.items USING hnsw (embedding public.vector_l2_ops);\n")
    own = archive(("TABLE", "items"), ("VIEW", "doubled"), ("VIEW", "totals"),
                  ("VIEW", "similar"))
    assert uses(ddl, own) == {
        ("operator", "||"), ("operator", "*"), ("function", "sum"),
        ("function", "vector_to_halfvec"), ("index method", "hnsw"),
        ("operator class", "vector_l2_ops for hnsw")}
