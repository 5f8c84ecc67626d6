# The streaming workload: a response of 1,000 chunks of 100 bytes, with no
# Content-Length, so the server sends each chunk as the application yields it.
CHUNK = b"x" * 99 + b"\n"
CHUNKS = 1000


def chunks():
    for _ in range(CHUNKS):
        yield CHUNK


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return chunks()
