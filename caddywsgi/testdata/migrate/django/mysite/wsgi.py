import os
import sys

from mysite import settings


def application(environ, start_response):
    body = "project=%s\nprefix=%s\nscript_name=%s\npath_info=%s\nuser_is_root=%s\n" % (
        settings.NAME, sys.prefix, environ["SCRIPT_NAME"], environ["PATH_INFO"], os.geteuid() == 0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
