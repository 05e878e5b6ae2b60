"""pipeline-kit: build once, sign, describe and promote the same digest."""

__version__ = "0.2.0.dev0"
