"""``python -m alert_engine``: settings, logging, serve until SIGTERM."""

from opsmesh.service_main import serve

from alert_engine.app import SERVICE, build
from alert_engine.settings import AlertEngineSettings

if __name__ == "__main__":
    serve(SERVICE, AlertEngineSettings, build)
