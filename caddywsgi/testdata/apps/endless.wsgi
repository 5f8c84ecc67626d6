"""Responses that go on until the client goes away, for cancel_test.go:
server-sent events from a generator or from write(), and a long poll. Each
logs when it stops and why, under the name the test gives it; /pid answers
the process id."""

import os
import time
from urllib.parse import parse_qs

TICK = 0.05  # seconds between two events


def query(environ, name):
    return parse_qs(environ['QUERY_STRING']).get(name, [''])[0]


class Events:
    """An endless event stream; with wait_for, a long poll that has nothing
    to say until that file exists."""

    def __init__(self, name, wait_for):
        self.name = name
        self.wait_for = wait_for
        self.produced = 0

    def __iter__(self):
        if self.wait_for:
            print('%s waiting for %s' % (self.name, self.wait_for), flush=True)
            while not os.path.exists(self.wait_for):
                time.sleep(0.005)
        while True:
            self.produced += 1
            yield b'data: %d\n\n' % self.produced
            time.sleep(TICK)

    def close(self):
        print('%s closed after %d events' % (self.name, self.produced), flush=True)


def write_events(name, write):
    produced = 0
    try:
        while True:
            produced += 1
            write(b'data: %d\n\n' % produced)
            time.sleep(TICK)
    except OSError as exc:
        print('%s: write() raised OSError after %d events: %s' % (name, produced, exc), flush=True)
    return []


def application(environ, start_response):
    if environ['PATH_INFO'] == '/pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    write = start_response('200 OK', [('Content-Type', 'text/event-stream')])
    if environ['PATH_INFO'] == '/write':
        return write_events(query(environ, 'name'), write)
    return Events(query(environ, 'name'), query(environ, 'wait_for'))
