"""Imports Django, which only the virtualenv has."""

import sys

import django


def application(environ, start_response):
    body = ('Django %s from the virtualenv %s\n' % (django.get_version(), sys.prefix)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]
