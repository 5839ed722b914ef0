"""notifier's pure core: payloads, target policy, retry policy. No I/O."""
