"""Started by Caddy: python caddy-wsgi-worker.py --app ... --fds ..."""
import sys

# Written so that any Python parses it, 2 included: the runtime itself uses
# 3.9's syntax and library, and an older interpreter must get this message,
# not a SyntaxError from the runtime.
if sys.version_info < (3, 9):
    sys.stderr.write('caddy-wsgi needs Python 3.9 or newer; %s is %d.%d.%d: set python or python_home to a '
                     'newer interpreter\n' % ((sys.executable,) + tuple(sys.version_info[:3])))
    sys.exit(1)

from caddy_wsgi.main import main  # noqa: E402 (after the version check)

sys.exit(main())
