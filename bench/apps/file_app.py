# The file workload: a 100 MiB file through wsgi.file_wrapper, which lets the
# server send it without the application copying it (sendfile where it can).
# The wrapper is optional in PEP 3333: a server without one (Granian) gets the
# standard fallback, an iterable of blocks. bench/run creates the file before
# it starts a server.
import os
import tempfile
from wsgiref.util import FileWrapper

PATH = os.path.join(tempfile.gettempdir(), "caddy-wsgi-bench", "data", "100MiB.bin")


def application(environ, start_response):
    f = open(PATH, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ.get("wsgi.file_wrapper", FileWrapper)(f, 1 << 20)
