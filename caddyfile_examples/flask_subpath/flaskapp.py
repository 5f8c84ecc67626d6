"""A Flask application that knows nothing of where it is mounted: Flask
builds its URLs from SCRIPT_NAME, which caddy-wsgi sets to the mount point."""

from flask import Flask, jsonify, request, url_for

app = Flask(__name__)


@app.route('/')
def index():
    return (f'<h1>Flask, mounted at {request.script_root}</h1>\n'
            f'<p><a href="{url_for("hello", name="caddy")}">Say hello</a></p>\n')


@app.route('/hello/<name>')
def hello(name):
    return jsonify(
        hello=name,
        script_root=request.script_root,
        path=request.path,
        url=url_for('hello', name=name, _external=True),
    )
