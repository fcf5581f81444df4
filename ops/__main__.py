"""``python -m ops`` is ``posko``."""

from ops.cli import main

raise SystemExit(main())
