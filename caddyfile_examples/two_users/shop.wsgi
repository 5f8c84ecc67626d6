from whoami import whoami


def application(environ, start_response):
    return whoami('shop', environ, start_response)
