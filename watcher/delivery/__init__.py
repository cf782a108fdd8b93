"""Delivery: the sinks events go to (stdout, the signed webhook) and the recorder."""
