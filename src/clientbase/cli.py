"""The `clientbase` command: Django's manage.py under the product's name."""

import os
import sys


def main() -> None:
    """Run a management command, e.g. `clientbase migrate` or `clientbase cron`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientbase.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
