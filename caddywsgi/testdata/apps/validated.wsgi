"""A small application wrapped in wsgiref.validate, which asserts that the
server follows PEP 3333 to the letter."""

from wsgiref.validate import validator


def app(environ, start_response):
    # validate's input wrapper insists on read(size), as PEP 3333 allows.
    body = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    if environ['PATH_INFO'] == '/gen':
        return iter([b'gen-', body])
    return [b'validated:', body]


application = validator(app)
