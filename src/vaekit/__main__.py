"""``python -m vaekit`` is the command line."""

from vaekit.cli import main

raise SystemExit(main())
