import no_such_module_anywhere

def application(environ, start_response):
    return []
