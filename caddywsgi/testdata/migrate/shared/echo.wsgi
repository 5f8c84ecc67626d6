# The application of the wsgi-migrate tests: it says what ran it, so that
# Apache with mod_wsgi and Caddy can be compared line by line.
import grp
import os
import pwd


def application(environ, start_response):
    body = echo(environ, "application")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def echo(environ, callable_name):
    lines = [
        "script=" + os.path.basename(environ.get("SCRIPT_FILENAME", "")),
        "callable=" + callable_name,
        "user=" + pwd.getpwuid(os.geteuid()).pw_name,
        "group=" + grp.getgrgid(os.getegid()).gr_name,
        "process_group=" + environ.get("mod_wsgi.process_group", ""),
    ]
    for key in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REMOTE_USER",
                "HTTP_AUTHORIZATION", "HTTPS", "wsgi.url_scheme", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN"):
        if key in environ:
            lines.append("%s=%s" % (key, environ[key]))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        lines.append("body=%d bytes" % len(environ["wsgi.input"].read(length)))
    return ("\n".join(lines) + "\n").encode()
