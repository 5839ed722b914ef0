"""The daily alert summary email (ALERT_SUMMARY_RECIPIENTS)."""
