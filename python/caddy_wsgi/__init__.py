"""caddy-wsgi worker runtime: runs a WSGI application for Caddy.

Caddy starts this package in the user's own interpreter and talks to it over
inherited UNIX sockets using the protocol in protocol/PROTOCOL.md. Standard
library only, CPython 3.9 or newer.
"""
