"""Versioned SQL migrations (NNNN_name.sql), applied at start."""
