"""What the console's periodic loop runs: the alert feed."""
