"""``python -m query_analyzer``: settings, logging, serve until SIGTERM."""

from opsmesh.service_main import serve
from query_analyzer.app import SERVICE, build
from query_analyzer.settings import QueryAnalyzerSettings

if __name__ == "__main__":
    serve(SERVICE, QueryAnalyzerSettings, build)
