"""``python -m bot.worker``: see :mod:`bot.worker.main`."""

from bot.worker.main import main

raise SystemExit(main())
