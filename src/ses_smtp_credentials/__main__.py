"""``python -m ses_smtp_credentials``: the same command line as ``ses-smtp-credentials``."""

from __future__ import annotations

from ses_smtp_credentials.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
