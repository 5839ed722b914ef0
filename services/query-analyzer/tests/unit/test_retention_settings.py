"""Windows are kept at least as long as the analysis reads back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from query_analyzer.pipeline.analysis import AnalysisConfig
from query_analyzer.settings import QueryAnalyzerSettings
from query_analyzer.storage.retention import windows_needed_s


def test_the_analysis_reads_back_a_regression_baseline_or_a_day() -> None:
    config = AnalysisConfig()
    assert windows_needed_s(60) == config.lookback_s == 86_400
    assert windows_needed_s(3600) == 65 * 3600  # 5 current + 60 baseline windows


def test_defaults_cover_the_longest_window() -> None:
    settings = QueryAnalyzerSettings(QUERY_ANALYZER_WINDOW_S=3600)
    assert settings.window_retention_days * 86_400 >= windows_needed_s(3600)
    assert settings.retention_days == 30


def test_a_window_retention_shorter_than_the_baseline_is_refused() -> None:
    with pytest.raises(ValidationError, match="QUERY_ANALYZER_WINDOW_RETENTION_DAYS must be"):
        QueryAnalyzerSettings(QUERY_ANALYZER_WINDOW_S=3600, QUERY_ANALYZER_WINDOW_RETENTION_DAYS=2)
