"""A lower-cased copy of each ticket's subject for fragment search; on PostgreSQL a trigram
index on it, so a fragment finds its tickets among millions without reading them all."""

from django.db import migrations, models

PG_INDEX = "support_ticket_subject_trgm"


def fill(apps, schema_editor):
    Ticket = apps.get_model("support", "Ticket")
    for ticket in Ticket.objects.only("pk", "subject").iterator(chunk_size=2000):
        Ticket.objects.filter(pk=ticket.pk).update(subject_search=ticket.subject.lower())


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # pg_trgm comes with the clients' search index (clients 0008).
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON support_ticket "
            "USING gin (subject_search gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0002_support_permissions"),
        ("clients", "0008_search_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="subject_search",
            field=models.CharField(blank=True, db_default="", max_length=300),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.RunPython(create_index, drop_index),
    ]
