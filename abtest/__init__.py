"""abtest: self-hosted A/B experiments and usability studies with honest statistics."""

__version__ = "0.1.0"
