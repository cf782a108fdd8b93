"""Sources of long-running objects: one module per API, each offering a `Source`.

The core (transitions, cadence, the poller, the store) sees only what `base.Source`
promises; `assistants` is the first source.
"""
