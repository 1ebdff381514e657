"""Benchmarks: what a user pays for a rotation and a cold start, each figure beside its goal.

``python -m bench`` (``make bench``) runs against the local world (moto + the SES-like SMTP
server), prints a Markdown table and writes ``results.json`` and ``rotation_vs_delay.png``.
Speed is measured here, side by side with its goal; no test ever asserts a timing.
"""
