"""Reports the client certificate the way mod_ssl's SSLOptions +StdEnvVars
passes it to applications under mod_wsgi."""

import json


def application(environ, start_response):
    body = json.dumps({
        key: environ.get(key)
        for key in ('HTTPS', 'wsgi.url_scheme', 'SSL_PROTOCOL', 'SSL_CLIENT_VERIFY',
                    'SSL_CLIENT_S_DN', 'SSL_CLIENT_I_DN', 'SSL_CLIENT_M_SERIAL')
    }, indent=1).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
