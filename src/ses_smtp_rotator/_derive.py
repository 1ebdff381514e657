"""The ``derive`` subcommand: SES SMTP passwords from a secret access key, on stdin.

The key comes from stdin, ``SES_SECRET_ACCESS_KEY`` or a prompt, never from argv; it must have the
form of an AWS secret access key (40 characters of ``A-Z a-z 0-9 + /``), so that an access key id
or an SMTP password pasted by mistake is refused instead of turned into a wrong password. A region
must be one where SES has an SMTP endpoint (:data:`~ses_smtp_rotator.endpoints.SES_REGIONS`), or
``--any-region`` given for one this version does not know yet. ``--legacy-v2`` (not region-bound)
takes no ``--region``.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from typing import TYPE_CHECKING, Final

from ses_smtp_rotator import _console
from ses_smtp_rotator._console import EXIT_OK, SECRET_ACCESS_KEY_ENV
from ses_smtp_rotator.endpoints import SES_REGIONS, validate_region
from ses_smtp_rotator.exceptions import InvalidRegionError, InvalidSecretError, UsageError
from ses_smtp_rotator.password import derive_legacy_v2_password, derive_smtp_password

if TYPE_CHECKING:
    import argparse

KEY_LENGTH: Final = 40
SECRET_ACCESS_KEY_FORM: Final = re.compile(rf"[A-Za-z0-9+/]{{{KEY_LENGTH}}}")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``derive``'s arguments (none of them is secret)."""
    parser.add_argument(
        "--region",
        action="append",
        default=[],
        help="SES region to derive the password for; repeat for several",
    )
    parser.add_argument(
        "--any-region",
        action="store_true",
        help="derive for a region not (yet) in the list of SES regions this version knows",
    )
    parser.add_argument(
        "--legacy-v2",
        action="store_true",
        help="derive the deprecated version 2 password (not region-bound; takes no --region)",
    )
    parser.add_argument("--json", action="store_true", help='print {"region": "password"}')


def _derive_regions(args: argparse.Namespace) -> list[str]:
    regions = [validate_region(region) for region in dict.fromkeys(args.region)]
    if args.legacy_v2 and regions:
        msg = (
            "--legacy-v2 passwords are not bound to a region, so --region does not apply: drop "
            "one of them (v4, with --region, is what SES expects)"
        )
        raise UsageError(msg)
    if not regions and not args.legacy_v2:
        msg = "give at least one --region (the SES endpoint's region, for example eu-west-1)"
        raise UsageError(msg)
    unknown = [region for region in regions if region not in SES_REGIONS]
    if unknown and not args.any_region:
        close = difflib.get_close_matches(unknown[0], sorted(SES_REGIONS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        msg = (
            f"SES has no SMTP endpoint in {unknown[0]} that this version knows{hint}; give "
            "--any-region to derive for it anyway"
        )
        raise InvalidRegionError(msg)
    return regions


def run(args: argparse.Namespace) -> int:
    """Print the password of each region (or the v2 password).

    Raises
    ------
    UsageError, InvalidRegionError, InvalidSecretError
        No region, an unknown one, ``--region`` with ``--legacy-v2``, no key or not a key
        (exit code 2).
    """
    regions = _derive_regions(args)
    key = _console.read_secret(SECRET_ACCESS_KEY_ENV, "secret access key")
    if not SECRET_ACCESS_KEY_FORM.fullmatch(key):
        msg = (
            f"that is not a secret access key (value not shown): AWS's are {KEY_LENGTH} "
            "characters of A-Z, a-z, 0-9, + and /; pipe the IAM user's secret access key, not "
            "its access key id or an SMTP password"
        )
        raise InvalidSecretError(msg)
    if args.legacy_v2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy = derive_legacy_v2_password(key)
        _console.err("note: version 2 passwords are deprecated; derive v4 with --region")
        passwords = {"*": legacy}
    else:
        passwords = {region: derive_smtp_password(key, region) for region in regions}
    if args.json:
        _console.out(json.dumps(passwords))
    elif len(passwords) == 1:
        _console.out(next(iter(passwords.values())))
    else:
        _console.out("\n".join(f"{region}\t{password}" for region, password in passwords.items()))
    return EXIT_OK
