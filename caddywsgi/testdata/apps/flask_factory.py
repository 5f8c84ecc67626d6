"""Flask's application factory pattern, for TestFlaskApplicationFactory:
each call of the factory adds the process id to the file it is given."""
import os

from flask import Flask, jsonify


def create_app(calls_file, greeting='hello'):
    with open(calls_file, 'a') as f:
        f.write('%d\n' % os.getpid())
    app = Flask(__name__)

    @app.route('/')
    def index():
        return jsonify(greeting=greeting, pid=os.getpid())

    return app
