import os
import sys

# The worker runtime (python/caddy_wsgi) imports as the package caddy_wsgi.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
