# The WSGI script for the Flask application, as for mod_wsgi: the script's
# directory is the workers' working directory and comes first on sys.path,
# so flaskapp.py beside it imports.
from flaskapp import app as application  # noqa: F401
