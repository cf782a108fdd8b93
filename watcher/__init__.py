"""runstep-watcher: watch Assistants runs and run steps, emit every status transition."""

__version__ = "0.1.0"
__all__ = ["__version__"]
