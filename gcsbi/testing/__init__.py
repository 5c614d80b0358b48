"""Small, fast stand-ins used by tests and tutorials (not for science)."""

from .toy import ToyImageSimulator

__all__ = ["ToyImageSimulator"]
