"""Records what each request body looked like to the application, one JSON
line per call in the file RECORD_FILE names, and answers the same line: the
tests of bodies that clients cut short check that no cut body ever reaches
the application as a complete one."""

import json
import os


def application(environ, start_response):
    seen = {'content_length': environ.get('CONTENT_LENGTH', '')}
    try:
        seen['size'] = len(environ['wsgi.input'].read())
    except Exception as e:
        seen['error'] = repr(e)
    line = json.dumps(seen)
    with open(os.environ['RECORD_FILE'], 'a') as f:
        f.write(line + '\n')
    body = line.encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
