"""The configuration: its model, the file + environment + flags loader, reloads."""
