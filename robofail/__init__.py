"""robofail: failure monitoring, failure generation and recovery for generative robot policies."""

__version__ = "0.1.0"
