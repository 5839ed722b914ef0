"""The receivers: their configuration file, the table of those in use, and its reload."""
