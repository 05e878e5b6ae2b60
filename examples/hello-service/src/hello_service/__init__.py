"""hello-service: greets people over HTTP and reports its own health."""

__version__ = "0.1.0"
