"""The watcher: its registry of watches, the poller, the scheduler, health."""
