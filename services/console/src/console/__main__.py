"""``python -m console``: settings, logging, serve until SIGTERM."""

from console.app import SERVICE, build
from console.settings import ConsoleSettings
from opsmesh.service_main import serve

if __name__ == "__main__":
    serve(SERVICE, ConsoleSettings, build)
