"""``python -m notifier``: settings, logging, serve until SIGTERM."""

from notifier.app import SERVICE, build
from notifier.settings import NotifierSettings
from opsmesh.service_main import serve

if __name__ == "__main__":
    serve(SERVICE, NotifierSettings, build)
