import os

exec(open(os.path.join(os.path.dirname(__file__), "..", "shared", "echo.wsgi")).read())


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [echo(environ, "app")]
