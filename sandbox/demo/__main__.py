"""``python -m sandbox.demo``: the same as ``make demo``."""

from __future__ import annotations

from sandbox.demo.run import main

if __name__ == "__main__":
    raise SystemExit(main())
