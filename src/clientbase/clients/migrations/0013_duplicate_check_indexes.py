"""Identifier indexes with the id in them for the duplicate check; unused pattern indexes gone.

The old single-column indexes are dropped by name rather than by AlterField, which on SQLite
would copy the whole client table three times (and drop the search triggers with it). On
PostgreSQL each also had a varchar_pattern_ops twin (`_like`) for LIKE 'prefix%', which no
query runs on these columns or on the client number; every insert paid for them.
"""

from django.db import migrations, models

OLD_INDEXES = (
    "clients_client_national_id_0cdc597c",
    "clients_client_phone_77380a5c",
    "clients_client_tax_id_d9248edb",
)
PATTERN_INDEXES = (*(f"{name}_like" for name in OLD_INDEXES), "clients_client_number_f8bf4026_like")


def drop_old_indexes(apps, schema_editor):
    names = OLD_INDEXES
    if schema_editor.connection.vendor == "postgresql":
        names = (*names, *PATTERN_INDEXES)
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_old_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for name in OLD_INDEXES:
        column = name.removeprefix("clients_client_").rsplit("_", 1)[0]
        schema_editor.execute(f"CREATE INDEX {quote(name)} ON clients_client ({quote(column)})")
    if schema_editor.connection.vendor == "postgresql":
        for name in PATTERN_INDEXES:
            column = name.removeprefix("clients_client_").rsplit("_", 2)[0]
            schema_editor.execute(
                f"CREATE INDEX {quote(name)} ON clients_client "
                f"({quote(column)} varchar_pattern_ops)"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0012_service_deferred_actions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="client",
                    name=name,
                    field=models.CharField(blank=True, max_length=32, verbose_name=label),
                )
                for name, label in (
                    ("national_id", "national id"),
                    ("phone", "phone"),
                    ("tax_id", "tax id"),
                )
            ],
            database_operations=[migrations.RunPython(drop_old_indexes, create_old_indexes)],
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["phone", "-id"], name="client_phone_id"),
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["tax_id", "-id"], name="client_tax_id_id"),
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["national_id", "-id"], name="client_national_id_id"),
        ),
    ]
