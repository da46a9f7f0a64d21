"""WSGI entry point for gunicorn (`clientbase serve`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientbase.settings")
application = get_wsgi_application()
