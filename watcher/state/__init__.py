"""The state: the store's interface, its SQLite and PostgreSQL backends, migrations."""
