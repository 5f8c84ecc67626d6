"""Records at every level, through the project's LOGGING (settings.py)."""

import logging

log = logging.getLogger('djangoproject.logdemo')


def log_each_level(where):
    log.debug('debug-%s', where)
    log.info('info-%s', where)
    log.warning('warn-%s', where)
    log.error('error-%s', where)
    log.critical('critical-%s', where)
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception('exception-%s', where)
