"""Logs at every level through logging.basicConfig, at import time, from a
request thread and from a thread of its own; ?stream=stdout logs to stdout."""

import logging
import sys
import threading

logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s: %(message)s')
log = logging.getLogger('levels.app')
to_stdout = logging.getLogger('levels.stdout')
to_stdout.addHandler(logging.StreamHandler(sys.stdout))
to_stdout.propagate = False


def log_each_level(logger, where):
    logger.debug('debug-%s', where)
    logger.info('info-%s', where)
    logger.warning('warn-%s', where)
    logger.error('error-%s', where)
    logger.critical('critical-%s', where)
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception('exception-%s', where)


log_each_level(log, 'import')


def application(environ, start_response):
    logger = to_stdout if 'stdout' in environ['QUERY_STRING'] else log
    where = environ['PATH_INFO'].strip('/')
    if where == 'background':
        thread = threading.Thread(target=log_each_level, args=(logger, 'background-' + environ['QUERY_STRING']))
        thread.start()
        thread.join()
    else:
        log_each_level(logger, 'request-' + environ['QUERY_STRING'])
        print('print-request')
        environ['wsgi.errors'].write('wsgi-errors-request\n')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'logged']
