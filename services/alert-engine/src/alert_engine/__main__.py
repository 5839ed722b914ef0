"""``python -m alert_engine``: settings, logging, serve until SIGTERM."""

from alert_engine.app import SERVICE, build
from alert_engine.settings import AlertEngineSettings
from opsmesh.service_main import serve

if __name__ == "__main__":
    serve(SERVICE, AlertEngineSettings, build)
