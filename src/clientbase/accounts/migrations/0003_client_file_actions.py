from django.db import migrations

# Actions added with merge, secret custom fields and custom field definitions: given to the
# default roles that would have had them, had they existed when the roles were created.
GRANTS = {
    "administrator": ["clients.merge", "clients.view_secrets", "core.manage_custom_fields"],
    "director": ["clients.merge", "clients.view_secrets"],
}


def grant(apps, schema_editor):
    role_model = apps.get_model("accounts", "Role")
    for slug, codes in GRANTS.items():
        for role in role_model.objects.filter(slug=slug):
            role.permissions = sorted(set(role.permissions) | set(codes))
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_default_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
