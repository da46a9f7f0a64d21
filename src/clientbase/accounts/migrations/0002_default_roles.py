from django.db import migrations


def create_default_roles(apps, schema_editor):
    from clientbase.accounts.roles import ensure_default_roles

    ensure_default_roles(apps.get_model("accounts", "Role"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_default_roles, migrations.RunPython.noop)]
