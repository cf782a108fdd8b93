"""The service around the watcher: daemon, HTTP API, notify, metrics, logs."""
