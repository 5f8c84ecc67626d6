import os

exec(open(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "echo.wsgi")).read())
