"""A trigram index of the tickets' lower-cased subjects on SQLite, as PostgreSQL has (0003).

A contentless FTS5 table with the trigram tokenizer, one row per ticket (rowid = id), kept in
step by triggers on support_ticket: a subject fragment then finds its tickets among millions
without reading them all. `clientbase.support.queries` queries it; the names below must stay
equal to the ones there.
"""

from django.db import migrations

SQLITE_TABLE = "support_ticket_subject"
SQLITE_TRIGGERS = (
    "support_ticket_subject_ai",
    "support_ticket_subject_ad",
    "support_ticket_subject_au",
)


def sqlite_create_statements() -> list[str]:
    """The FTS5 table, its triggers and the rows of the tickets already there."""
    insert = f"INSERT INTO {SQLITE_TABLE}(rowid, subject) VALUES (new.id, new.subject_search);"
    # A contentless table forgets a row only when given the very text it indexed.
    delete = (
        f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, subject) "
        "VALUES ('delete', old.id, old.subject_search);"
    )
    return [
        # Contentless: the text already lives in support_ticket; columnsize=0: no ranking.
        f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5("
        "subject, content='', columnsize=0, tokenize='trigram')",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} AFTER INSERT ON support_ticket BEGIN {insert} END",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} AFTER DELETE ON support_ticket BEGIN {delete} END",
        # Only a change of the subject touches the index (not the status, the version…).
        f"CREATE TRIGGER {SQLITE_TRIGGERS[2]} AFTER UPDATE OF subject_search ON support_ticket "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {SQLITE_TABLE}(rowid, subject) SELECT id, subject_search FROM support_ticket",
    ]


def sqlite_drop_statements() -> list[str]:
    """Everything sqlite_create_statements made, gone."""
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS] + [
        f"DROP TABLE IF EXISTS {SQLITE_TABLE}"
    ]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return  # PostgreSQL has its pg_trgm index since 0003
        with schema_editor.connection.cursor() as cursor:
            for statement in statements():
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("support", "0006_merged_into_partial_index")]

    operations = [
        migrations.RunPython(
            _run(sqlite_create_statements), _run(sqlite_drop_statements), elidable=False
        )
    ]
