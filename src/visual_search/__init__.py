"""Visual Search: find images by what they show."""

__version__ = "0.1.0"
