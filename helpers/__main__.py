"""``python -m helpers ...``: the notebooks' jobs for scripts and long runs."""

from .cli import main

raise SystemExit(main())
