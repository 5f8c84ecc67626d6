# The Django workload: a whole Django project in one file, with a view that
# renders a small template through the template engine (cached loader, no
# database; CommonMiddleware, as most projects have, sets Content-Length).
import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.shortcuts import render
from django.urls import path

TEMPLATE = """<!doctype html>
<html><head><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1>
<ul>{% for item in items %}<li>item {{ item }}</li>{% endfor %}</ul>
</body></html>
"""


def page(request):
    return render(request, "page.html", {"title": "Hello, world!", "items": range(10)})


class urls:
    # Django takes a module or any object with urlpatterns as the URLconf.
    urlpatterns = [path("page", page)]


settings.configure(
    DEBUG=False,
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=urls,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    TEMPLATES=[{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {"loaders": [
            ("django.template.loaders.cached.Loader",
             [("django.template.loaders.locmem.Loader", {"page.html": TEMPLATE})]),
        ]},
    }],
)
django.setup(set_prefix=False)
application = get_wsgi_application()
