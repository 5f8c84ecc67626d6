"""The WSGI entry point, as `django-admin startproject` writes it: caddy-wsgi
loads this file the way mod_wsgi's WSGIScriptAlias does."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')

application = get_wsgi_application()
