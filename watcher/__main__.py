"""`python -m watcher` is the same as the `runstep-watcher` console script."""

from watcher.cli.main import main

raise SystemExit(main())
