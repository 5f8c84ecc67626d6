"""Imports a package only the test virtualenv has."""

import sys

import django


def application(environ, start_response):
    body = ('django %s from %s' % (django.get_version(), sys.prefix)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
