# Imported from python-path, as a Django project's settings are.
NAME = "mysite"
