"""Root conftest: the fixtures that start real infrastructure live in tests/fixtures."""

pytest_plugins = ["tests.fixtures.infrastructure", "tests.fixtures.kafka"]
