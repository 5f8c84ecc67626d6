# The WSGI script, as a mod_wsgi deployment writes it: the script's directory
# (the workers' working directory) is on sys.path, so the package imports.
from flaskapp import create_app

application = create_app()
