"""A simulated Assistants API: runs and steps whose statuses move on a script."""
