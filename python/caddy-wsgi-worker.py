"""Started by Caddy: python caddy-wsgi-worker.py --app ... --fds ..."""
import sys

from caddy_wsgi.main import main

sys.exit(main())
