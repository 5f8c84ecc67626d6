from whoami import whoami


def application(environ, start_response):
    return whoami('blog', environ, start_response)
