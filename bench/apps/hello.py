# The benchmark app: the smallest WSGI response, so the numbers measure the
# server and its transport, not the application.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])
    return [b'Hello, world!']
