import hashlib
import os
import time

from flask import (Blueprint, abort, current_app, jsonify, redirect, request, send_from_directory,
                   session, stream_with_context, url_for)

bp = Blueprint('main', __name__)


@bp.route('/')
@bp.route('/info/<path:rest>')
def info(rest=''):
    return jsonify(
        path=request.path,
        script_root=request.script_root,
        url=request.url,
        scheme=request.scheme,
        is_secure=request.is_secure,
        https=request.environ.get('HTTPS'),
        protocol=request.environ.get('SERVER_PROTOCOL'),
        rest=rest,
        args=request.args.to_dict(flat=False),
        headers=dict(request.headers),
        pid=os.getpid(),
    )


@bp.post('/form')
def form():
    return jsonify(form=request.form.to_dict(flat=False), content_type=request.content_type)


def digest(stream):
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(1 << 16), b''):
        size += len(chunk)
        h.update(chunk)
    return {'size': size, 'sha256': h.hexdigest()}


@bp.post('/upload')
def upload():
    f = request.files['file']
    return jsonify(filename=f.filename, fields=request.form.to_dict(), **digest(f.stream))


@bp.post('/raw')
def raw():
    """The raw body, read to its end even when it has no Content-Length
    (Werkzeug honours wsgi.input_terminated)."""
    return jsonify(content_length=request.environ.get('CONTENT_LENGTH'), **digest(request.stream))


@bp.route('/stream')
def stream():
    """Streams lines; after the first it waits for the file named by ?wait to
    exist, so the test can prove that the first line arrived on its own."""
    def generate():
        yield 'line 0 for %s\n' % request.args['name']
        wait = request.args.get('wait')
        if wait:
            deadline = time.monotonic() + 20
            while not os.path.exists(wait):
                if time.monotonic() > deadline:
                    raise RuntimeError('%s never appeared' % wait)
                time.sleep(0.005)
        for i in range(1, int(request.args.get('n', '3'))):
            yield 'line %d for %s\n' % (i, request.args['name'])
    return current_app.response_class(stream_with_context(generate()), mimetype='text/plain')


@bp.route('/files/<name>')
def files(name):
    response = send_from_directory(current_app.config['DOWNLOAD_DIR'], name)
    wrapped = response.response
    response.headers['X-Body-Type'] = '%s.%s' % (type(wrapped).__module__, type(wrapped).__name__)
    return response


@bp.route('/missing')
def missing():
    abort(404)


@bp.route('/error')
def error():
    raise ZeroDivisionError('flask-boom')


@bp.route('/go')
def go():
    return redirect(url_for('main.info', rest='target', q='1', _external='external' in request.args))


@bp.route('/session/set/<value>')
def session_set(value):
    session['value'] = value
    return jsonify(set=value)


@bp.route('/session/get')
def session_get():
    return jsonify(value=session.get('value'))
