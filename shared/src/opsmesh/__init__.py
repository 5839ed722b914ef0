"""opsmesh common library: what every service imports."""

__version__ = "0.1.0"
