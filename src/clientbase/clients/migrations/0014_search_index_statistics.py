"""A larger statistics sample of the PostgreSQL search document (PLT-4).

The planner guesses how many clients a fragment matches by testing it against the
histogram of whole documents that ANALYZE keeps for the trigram index's expression. With
the default 100 of them a fragment in 2% of a million clients often matches none, is taken
for a rare one, and every match is read from the table (18,000 rows, 100-300 ms) instead
of only those in the id range and the user's sight. With 1,000 the guess is close, and
PostgreSQL intersects the trigram index with the primary key and owner indexes itself.
"""

from django.db import migrations

PG_INDEX = "clients_client_search_trgm"
STATISTICS = 1000


def _set(target: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [PG_INDEX])
            if cursor.fetchone() is None:
                # Suspended for a load: ensure_search_index builds it with the setting.
                return
            cursor.execute(f"ALTER INDEX {PG_INDEX} ALTER COLUMN 1 SET STATISTICS {target:d}")
            cursor.execute("ANALYZE clients_client")

    return run


class Migration(migrations.Migration):
    dependencies = [("clients", "0013_duplicate_check_indexes")]

    operations = [migrations.RunPython(_set(STATISTICS), _set(-1), elidable=False)]
