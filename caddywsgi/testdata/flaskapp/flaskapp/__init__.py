"""A small but real Flask application for caddy-wsgi's end-to-end tests."""

import os

from flask import Flask


def create_app():
    app = Flask(__name__)
    app.config.update(
        # Fixed, so that every worker process accepts the others' sessions.
        SECRET_KEY='caddy-wsgi-test-secret',
        # The application's own 500 page and logging, not the server's.
        PROPAGATE_EXCEPTIONS=False,
        DOWNLOAD_DIR=os.environ.get('FLASKAPP_DOWNLOAD_DIR', ''),
    )
    from . import views
    app.register_blueprint(views.bp)
    return app
