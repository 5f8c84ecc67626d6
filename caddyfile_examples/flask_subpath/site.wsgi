"""The application at /: a plain WSGI callable."""


def application(environ, start_response):
    body = ('<h1>The main site</h1>\n'
            '<p>You asked for %s. The Flask application is at <a href="/flask/">/flask/</a>.</p>\n'
            % environ['PATH_INFO'].replace('&', '&amp;').replace('<', '&lt;')).encode('latin-1', 'replace')
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]
