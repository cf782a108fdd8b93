"""The pure core: transitions, events, pacing, keys and text helpers; no I/O."""
