from django.urls import path

from . import views

urlpatterns = [
    path('', views.info, name='home'),
    path('info/<path:rest>', views.info, name='info'),
    path('form', views.form),
    path('upload', views.upload),
    path('raw', views.raw),
    path('stream', views.stream),
    path('files/<str:name>', views.files),
    path('missing', views.missing),
    path('error', views.error),
    path('log/<str:where>', views.log),
]
