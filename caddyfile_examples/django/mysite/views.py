from django.shortcuts import render


def home(request):
    return render(request, 'home.html', {
        'script_name': request.META.get('SCRIPT_NAME', ''),
        'process_group': request.META.get('mod_wsgi.process_group', ''),
    })
