"""Reading which table each item of an archive belongs to, from pg_restore's script."""

from __future__ import annotations

from pgvdrill.logical.table_items import read

# pg_restore --schema-only of a PostgreSQL 18.6 custom dump (SET lines left out)
SCRIPT = """
--
-- Name: it ems; Type: TABLE; Schema: vec space; Owner: postgres
--

CREATE TABLE "vec space"."it ems" (
    id integer NOT NULL,
    e public.vector(3)
)
PARTITION BY HASH (id);

--
-- Name: it ems part 0; Type: TABLE; Schema: vec space; Owner: postgres
--

CREATE TABLE "vec space"."it ems part 0" (
    id integer CONSTRAINT "it ems_id_not_null" NOT NULL,
    e public.vector(3)
);

--
-- Name: it ems part 0; Type: TABLE ATTACH; Schema: vec space; Owner: postgres
--

ALTER TABLE ONLY "vec space"."it ems" ATTACH PARTITION "vec space"."it ems part 0" FOR \
VALUES WITH (modulus 2, remainder 0);

--
-- Name: it ems it ems_pkey; Type: CONSTRAINT; Schema: vec space; Owner: postgres
--

ALTER TABLE ONLY "vec space"."it ems"
    ADD CONSTRAINT "it ems_pkey" PRIMARY KEY (id);

--
-- Name: it ems part 0 it ems part 0_pkey; Type: CONSTRAINT; Schema: vec space; Owner: postgres
--

ALTER TABLE ONLY "vec space"."it ems part 0"
    ADD CONSTRAINT "it ems part 0_pkey" PRIMARY KEY (id);

--
-- Name: h idx; Type: INDEX; Schema: vec space; Owner: postgres
--

CREATE INDEX "h idx" ON ONLY "vec space"."it ems" USING hnsw (e public.vector_l2_ops);

--
-- Name: it ems part 0_e_idx; Type: INDEX; Schema: vec space; Owner: postgres
--

CREATE INDEX "it ems part 0_e_idx" ON "vec space"."it ems part 0" USING hnsw (e \
public.vector_l2_ops);

--
-- Name: it ems part 0_e_idx; Type: INDEX ATTACH; Schema: vec space; Owner: postgres
--

ALTER INDEX "vec space"."h idx" ATTACH PARTITION "vec space"."it ems part 0_e_idx";

--
-- Name: it ems part 0_pkey; Type: INDEX ATTACH; Schema: vec space; Owner: postgres
--

ALTER INDEX "vec space"."it ems_pkey" ATTACH PARTITION "vec space"."it ems part 0_pkey";

--
-- Name: docs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.docs_id_seq OWNED BY public.docs.id;
"""
PARENT = ("vec space", "it ems")
PART = ("vec space", "it ems part 0")


def test_items_belong_to_the_table_their_statement_names() -> None:
    items = read(SCRIPT)
    assert items.table_of("CONSTRAINT", "vec space", "it ems it ems_pkey") == PARENT
    assert items.table_of("CONSTRAINT", "vec space", "it ems part 0 it ems part 0_pkey") == PART
    assert items.table_of("INDEX", "vec space", "h idx") == PARENT
    assert items.table_of("INDEX", "vec space", "it ems part 0_e_idx") == PART
    assert items.table_of("TABLE", "vec space", "it ems") is None  # tables are matched by name


def test_attachments_belong_to_the_partitioned_table_and_index() -> None:
    items = read(SCRIPT)
    assert items.table_of("TABLE ATTACH", "vec space", "it ems part 0") == PARENT
    assert items.table_of("INDEX ATTACH", "vec space", "it ems part 0_e_idx") == PARENT
    assert items.table_of("INDEX ATTACH", "vec space", "it ems part 0_pkey") == PARENT
    assert items.partitions == {PARENT: {PART}}


def test_a_partitioned_table_brings_its_partitions_and_a_partition_only_itself() -> None:
    items = read(SCRIPT)
    assert items.with_partitions([PARENT]) == {PARENT, PART}
    assert items.with_partitions([PART]) == {PART}


def test_an_owned_sequence_and_its_value_come_with_the_table() -> None:
    items = read(SCRIPT)
    for desc in ("SEQUENCE OWNED BY", "SEQUENCE", "SEQUENCE SET"):
        assert items.table_of(desc, "public", "docs_id_seq") == ("public", "docs")


def test_items_are_told_apart_by_schema_not_by_where_a_space_falls() -> None:
    items = read(SCRIPT)
    assert items.table_of("INDEX", "vec", "space h idx") is None
    assert items.schemas_of({PARENT}) == {"vec space"}
