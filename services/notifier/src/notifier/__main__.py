"""``python -m notifier``: settings, logging, serve until SIGTERM."""

from opsmesh.service_main import serve

from notifier.app import SERVICE, build
from notifier.settings import NotifierSettings

if __name__ == "__main__":
    serve(SERVICE, NotifierSettings, build)
