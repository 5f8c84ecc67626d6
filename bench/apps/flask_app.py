# The Flask workload: a JSON view, the smallest thing a Flask API serves.
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/json")
def json_view():
    return jsonify(message="Hello, world!")


application = app
