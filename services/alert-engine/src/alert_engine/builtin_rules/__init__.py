"""The built-in alerting rules (``default.yml``) and their unit tests (``default_test.yml``),
installed by ``opsmesh setup-default-alerts``."""
