"""Test doubles of the shared library's ports, for the tests of every service; no service
imports this package at run time."""
