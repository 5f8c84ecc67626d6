"""Settings for the minimal Django project of caddy-wsgi's end-to-end tests:
production-like (DEBUG off), no database, no installed apps."""

import os

SECRET_KEY = 'caddy-wsgi-test-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']

INSTALLED_APPS = []
MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
]
ROOT_URLCONF = 'djangoproject.urls'
WSGI_APPLICATION = 'djangoproject.wsgi.application'
DATABASES = {}
USE_TZ = True
# Relative: Django prefixes it with the SCRIPT_NAME of the first request it
# reads it in, once per process.
STATIC_URL = 'static/'

# Where FileResponse serves files from; the Caddyfile sets it.
DOWNLOAD_DIR = os.environ.get('DJANGOPROJECT_DOWNLOAD_DIR', '')

# With DEBUG off Django only mails request errors to the admins: send them to
# stderr instead, which caddy-wsgi logs. The project's own loggers log every
# level to stdout.
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'formatters': {
        'plain': {'format': '{levelname} {name}: {message}', 'style': '{'},
    },
    'handlers': {
        'stderr': {'class': 'logging.StreamHandler'},
        'stdout': {'class': 'logging.StreamHandler', 'stream': 'ext://sys.stdout', 'formatter': 'plain'},
    },
    'loggers': {
        'django.request': {'handlers': ['stderr'], 'level': 'ERROR', 'propagate': False},
        'djangoproject': {'handlers': ['stdout'], 'level': 'DEBUG', 'propagate': False},
    },
}
