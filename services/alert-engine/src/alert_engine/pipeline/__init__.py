"""alert-engine pipeline stages: signals → evaluation → state → groups → notification requests."""
