"""``python -m helpers ...``: the notebooks' jobs for scripts and long runs."""

from .commands import main

raise SystemExit(main())
