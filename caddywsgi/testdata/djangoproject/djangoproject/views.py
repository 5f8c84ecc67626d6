import hashlib
import os
import threading
import time

from django.conf import settings
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from .logdemo import log_each_level


def info(request, rest=''):
    return JsonResponse({
        'path': request.path,
        'path_info': request.path_info,
        'script_name': request.META['SCRIPT_NAME'],
        'reverse': reverse('info', kwargs={'rest': 'a/b'}),
        'absolute': request.build_absolute_uri(reverse('home')),
        'scheme': request.scheme,
        'is_secure': request.is_secure(),
        'protocol': request.META.get('SERVER_PROTOCOL'),
        'rest': rest,
        'get': {k: request.GET.getlist(k) for k in request.GET},
        'host': request.get_host(),
        'pid': os.getpid(),
        'static': settings.STATIC_URL,
    })


@csrf_exempt
def form(request):
    return JsonResponse({'post': {k: request.POST.getlist(k) for k in request.POST},
                         'method': request.method})


def digest(chunks):
    h = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        h.update(chunk)
    return {'size': size, 'sha256': h.hexdigest()}


@csrf_exempt
def upload(request):
    f = request.FILES['file']
    return JsonResponse({'name': f.name, 'fields': request.POST.dict(), **digest(f.chunks())})


@csrf_exempt
def raw(request):
    return JsonResponse({'content_length': request.META.get('CONTENT_LENGTH'), **digest([request.body])})


def stream(request):
    """Streams lines; after the first it waits for the file named by ?wait to
    exist, so the test can prove that the first line arrived on its own."""
    name = request.GET['name']
    wait = request.GET.get('wait')
    n = int(request.GET.get('n', '3'))

    def generate():
        yield 'line 0 for %s\n' % name
        if wait:
            deadline = time.monotonic() + 20
            while not os.path.exists(wait):
                if time.monotonic() > deadline:
                    raise RuntimeError('%s never appeared' % wait)
                time.sleep(0.005)
        for i in range(1, n):
            yield 'line %d for %s\n' % (i, name)
    return StreamingHttpResponse(generate(), content_type='text/plain')


def files(request, name):
    path = os.path.join(settings.DOWNLOAD_DIR, os.path.basename(name))
    if not os.path.isfile(path):
        raise Http404('no file %s' % name)
    return FileResponse(open(path, 'rb'), as_attachment=False)


def missing(request):
    raise Http404('nothing here')


def error(request):
    raise ZeroDivisionError('django-boom')


def log(request, where):
    """Logs at every level from the request's thread, or from a thread of its
    own for /log/background."""
    if where == 'background':
        thread = threading.Thread(target=log_each_level, args=('django-background',))
        thread.start()
        thread.join()
    else:
        log_each_level('django-request')
    return JsonResponse({'logged': where})
