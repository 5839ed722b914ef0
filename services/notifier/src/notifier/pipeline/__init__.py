"""notifier pipeline stages: requests → dedup by key → deliver with retries → results."""
