"""Quick search over clients (PLT-4): a trigram index of each client's searchable text.

SQLite: a contentless FTS5 table with the trigram tokenizer, one row per client (rowid = id),
kept in step by triggers on clients_client. PostgreSQL: pg_trgm and a GIN index on the same
text as an expression. `clientbase.clients.search` queries them; its DOCUMENT_COLUMNS and SQL
must stay equal to the ones below (a test compares them).
"""

from django.db import migrations

# The searchable columns, in document order; all NOT NULL, so no COALESCE is needed.
DOCUMENT_COLUMNS = (
    "number",
    "name",
    "company_name",
    "email",
    "phone",
    "tax_id",
    "national_id",
    "custom_search",
)

SQLITE_TABLE = "clients_client_search"
SQLITE_TRIGGERS = (
    "clients_client_search_ai",
    "clients_client_search_ad",
    "clients_client_search_au",
)
PG_INDEX = "clients_client_search_trgm"


def sqlite_document(row: str) -> str:
    """The document of a row (`new`, `old` or a table), its fields a newline apart.

    A newline cannot be typed into a search box, so no fragment matches across two fields.
    """
    return " || char(10) || ".join(f"{row}.{column}" for column in DOCUMENT_COLUMNS)


# pg_trgm splits words at punctuation, so "o.dang" would leave it only "dang" to look up
# (tens of thousands of rows to recheck); in the PostgreSQL document these signs become
# letters nobody types, so trigrams span them. Search translates fragments the same way.
# (replace(), four times, costs far less a row than one translate().)
PG_JOINED = ".@-_"
PG_JOINERS = "ǀǁǂǃ"


def pg_document() -> str:
    """The same document as a PostgreSQL expression over the row's columns."""
    document = "(" + " || E'\\n' || ".join(f'"{column}"' for column in DOCUMENT_COLUMNS) + ")"
    for sign, letter in zip(PG_JOINED, PG_JOINERS, strict=True):
        document = f"replace({document}, '{sign}', '{letter}')"
    return document


def sqlite_create_statements() -> list[str]:
    """The FTS5 table, its triggers and the rows of the clients already there."""
    watched = ", ".join(DOCUMENT_COLUMNS)
    insert = (
        f"INSERT INTO {SQLITE_TABLE}(rowid, document) VALUES (new.id, {sqlite_document('new')});"
    )
    # A contentless table forgets a row only when given the very text it indexed.
    delete = (
        f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, document) "
        f"VALUES ('delete', old.id, {sqlite_document('old')});"
    )
    return [
        # Contentless: the text already lives in clients_client; columnsize=0: no ranking.
        f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5("
        "document, content='', columnsize=0, tokenize='trigram')",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} AFTER INSERT ON clients_client BEGIN {insert} END",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} AFTER DELETE ON clients_client BEGIN {delete} END",
        # Only a change of a searched column touches the index (not status, version…).
        f"CREATE TRIGGER {SQLITE_TRIGGERS[2]} AFTER UPDATE OF {watched} ON clients_client "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {SQLITE_TABLE}(rowid, document) "
        f"SELECT id, {sqlite_document('clients_client')} FROM clients_client",
    ]


def sqlite_drop_statements() -> list[str]:
    """Everything sqlite_create_statements made, gone."""
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS] + [
        f"DROP TABLE IF EXISTS {SQLITE_TABLE}"
    ]


def pg_create_statements() -> list[str]:
    """pg_trgm (a trusted extension: the database owner may create it) and the GIN index."""
    return [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON clients_client "
        f"USING gin ({pg_document()} gin_trgm_ops)",
        # Statistics on the expression let the planner tell a common fragment from a rare one.
        "ANALYZE clients_client",
    ]


def pg_drop_statements() -> list[str]:
    """The index goes; pg_trgm stays, as other tables may use it."""
    return [f"DROP INDEX IF EXISTS {PG_INDEX}"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            return
        with schema_editor.connection.cursor() as cursor:
            for statement in statements():
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("clients", "0007_hierarchy_merge_custom_fields")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": sqlite_create_statements, "postgresql": pg_create_statements}),
            _run({"sqlite": sqlite_drop_statements, "postgresql": pg_drop_statements}),
            elidable=False,
        )
    ]
