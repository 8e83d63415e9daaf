"""Statement timings and WAL replay from server log text (the parsing; drills run it live)."""

from __future__ import annotations

import pytest

from pgvdrill import statement_log
from pgvdrill.timing import Item, Phase
from pgvdrill.wal.replay import replay_item

TAG = "pgvdrill-restore-0a1b2c3d"


def _logged(epoch: str, app: str, ms: str, statement: str) -> str:
    return f"{epoch} [11] {app}: LOG:  duration: {ms} ms  statement: {statement}\n"


LOG = "".join([
    _logged("1800000000.100", TAG, "1.000", "CREATE TABLE public.documents (\n"
            "\tid bigint NOT NULL\n\t);"),
    _logged("1800000000.500", "other-app", "300.000", "COPY public.other (id) FROM stdin;"),
    _logged("1800000001.000", TAG, "400.000",
            "COPY public.documents (id, embedding) FROM stdin;"),
    _logged("1800000001.250", TAG, "200.000", 'COPY "My Schema"."Odd ""T""" (id) FROM stdin;'),
    _logged("1800000002.000", TAG, "700.000",
            "CREATE INDEX documents_hnsw ON public.documents USING hnsw "
            "(embedding public.vector_cosine_ops) WITH (m='16');"),
    _logged("1800000002.100", TAG, "50.500", "ALTER TABLE ONLY public.documents\n"
            "\tADD CONSTRAINT documents_pkey PRIMARY KEY (id);"),
    f"1800000002.200 [11] {TAG}: WARNING:  something else\n",
])


def test_statements_of_one_tag_with_continuation_lines() -> None:
    found = statement_log.statements(LOG, TAG)

    assert len(found) == 5
    assert found[0].sql.endswith("id bigint NOT NULL\n);")
    assert found[4].sql == ("ALTER TABLE ONLY public.documents\n"
                            "ADD CONSTRAINT documents_pkey PRIMARY KEY (id);")
    assert found[1].start == pytest.approx(1800000000.6)


def test_items_name_tables_indexes_and_constraints() -> None:
    items = statement_log.items(statement_log.statements(LOG, TAG))

    assert items == [
        Item("data", "public.documents", 0.4),
        Item("data", 'My Schema.Odd "T"', 0.2),
        Item("index", "public.documents_hnsw (hnsw)", 0.7),
        Item("constraint", "public.documents.documents_pkey (primary key)", 0.0505),
    ]


def test_phases_split_the_wall_time_at_the_data_loads() -> None:
    found = statement_log.statements(LOG, TAG)

    phases = statement_log.phases(found, 1800000000.0, 1800000002.5)

    assert [p.phase for p in phases] == ["schema", "data", "post-data"]
    assert [round(p.seconds, 3) for p in phases] == [0.6, 0.65, 1.25]
    assert sum(p.seconds for p in phases) == pytest.approx(2.5)


def test_phases_without_data_are_one_restore_phase() -> None:
    found = statement_log.statements(LOG, TAG)[:1]

    assert statement_log.phases(found, 10.0, 12.0) == [Phase("restore", 2.0)]


def test_tagged_env_escapes_spaces_and_always_logs_durations() -> None:
    env = statement_log.tagged_env(TAG, [("search_path", "a b")])

    assert env == {"PGAPPNAME": TAG, "PGOPTIONS":
                   "-c log_min_duration_statement=0 -c search_path=a\\ b"}


def test_replay_item_from_redo_lines() -> None:
    log = ("LOG:  redo starts at 0/2000028\n"
           "LOG:  redo done at 0/3000100 system usage: CPU: user: 0.00 s, system: 0.00 s, "
           "elapsed: 0.25 s\n")

    item = replay_item(log)

    assert item == Item("wal-replay", "0/2000028 to 0/3000100", 0.25,
                        bytes=0x3000100 - 0x2000028, segments=2)


def test_no_replay_item_without_a_finished_redo() -> None:
    assert replay_item("LOG:  redo starts at 0/2000028\n") is None
