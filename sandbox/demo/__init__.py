"""``make demo``: watch SES SMTP credentials rotate end to end, with no AWS account.

The demo's own package: :mod:`~sandbox.demo.run` (the command line and the run),
:mod:`~sandbox.demo.options` (its options), :mod:`~sandbox.demo.rotation` (one rotation),
:mod:`~sandbox.demo.app` (the app that keeps sending mail), :mod:`~sandbox.demo.daemons` (the
read-once and the synced daemon), :mod:`~sandbox.demo.progress` (the live lines) and
:mod:`~sandbox.demo.summary` (the closing tables). Run it with ``python -m sandbox.demo``.
"""

from __future__ import annotations

from sandbox.demo.options import build_parser
from sandbox.demo.rotation import STEP_FAULTS
from sandbox.demo.run import EXIT_INTERRUPTED, main

__all__ = ["EXIT_INTERRUPTED", "STEP_FAULTS", "build_parser", "main"]
