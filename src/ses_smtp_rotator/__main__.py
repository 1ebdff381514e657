"""``python -m ses_smtp_rotator``: the same command line as ``ses-smtp-rotator``."""

from __future__ import annotations

from ses_smtp_rotator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
