"""pip-audit over every locked dependency: ``python -m tools.audit [--allow-offline]``.

Each dependency group of ``uv.lock`` (``dev``, which includes the runtime dependencies the Lambda
zip ships, ``sam`` and ``checkov``) is exported as exact pins and audited with pip-audit against
PyPI's vulnerability data, without resolving or installing anything.

Exit codes: 0 no known vulnerability; 1 a known vulnerability (each is listed) or a package that
could not be audited while the others could; 3 no vulnerability data could be reached at all (a
machine with no route to it). With ``--allow-offline`` that last case prints ``SKIPPED`` with the
reason and exits 0: ``make test`` runs on machines whose only network is a package mirror.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

GROUPS: Final = ("dev", "sam", "checkov")
# Known vulnerabilities accepted on purpose: {"GHSA-…": "why it does not affect us"}. None today.
IGNORED: Final[dict[str, str]] = {}
EXIT_OK, EXIT_VULNERABLE, EXIT_UNREACHABLE = 0, 1, 3


@dataclass
class Verdict:
    """What one pip-audit report says."""

    audited: int = 0
    vulnerable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def judge(report: dict[str, Any]) -> Verdict:
    """Sort a pip-audit JSON report into audited, vulnerable and skipped packages."""
    verdict = Verdict()
    for dependency in report.get("dependencies", []):
        name = f"{dependency['name']}=={dependency.get('version', '?')}"
        if "skip_reason" in dependency:
            verdict.skipped.append(str(dependency["name"]))
            continue
        verdict.audited += 1
        verdict.vulnerable += [
            f"{name}: {vuln['id']} (fixed in {', '.join(vuln.get('fix_versions', [])) or '—'})"
            for vuln in dependency.get("vulns", [])
            if vuln["id"] not in IGNORED
        ]
    return verdict


def exit_code(verdicts: dict[str, Verdict]) -> int:
    """0 clean, 1 vulnerable or partly unaudited, 3 nothing could be audited."""
    if any(v.vulnerable for v in verdicts.values()):
        return EXIT_VULNERABLE
    if not any(v.audited for v in verdicts.values()):
        return EXIT_UNREACHABLE
    return EXIT_VULNERABLE if any(v.skipped for v in verdicts.values()) else EXIT_OK


def _export(uv: str, group: str, directory: Path) -> Path:
    selection = [] if group == "dev" else ["--only-group", group]
    text = subprocess.run(  # noqa: S603 - our own uv, fixed arguments
        [uv, "export", "--locked", "--no-hashes", "--no-emit-project", "-q", *selection],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / f"{group}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _audit(requirements: Path) -> dict[str, Any]:
    options = ["--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json"]
    done = subprocess.run(  # noqa: S603 - pip-audit from this environment, fixed arguments
        [sys.executable, "-m", "pip_audit", "--requirement", str(requirements), *options],
        check=False,
        capture_output=True,
        text=True,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"dependencies": []}  # pip-audit could not run at all: nothing was audited
    return report


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    """Audit every group; print one line per group and each finding."""
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__)
    parser.add_argument("--uv", default=".tools/uv/bin/uv", help="the uv binary (make setup's)")
    parser.add_argument("--allow-offline", action="store_true", help="exit 0 when unreachable")
    args = parser.parse_args(argv)
    verdicts: dict[str, Verdict] = {}
    with tempfile.TemporaryDirectory() as directory:
        for group in GROUPS:
            verdicts[group] = judge(_audit(_export(args.uv, group, Path(directory))))
            v = verdicts[group]
            _say(f"  {group:8} {v.audited} audited, {len(v.skipped)} not auditable")
            for finding in v.vulnerable:
                _say(f"    VULNERABLE {finding}")
    code = exit_code(verdicts)
    if code == EXIT_UNREACHABLE:
        _say(
            "pip-audit: SKIPPED: no vulnerability data reachable from this machine (every package "
            "came back unauditable); run `make audit` where PyPI's JSON API or OSV is reachable"
        )
        return EXIT_OK if args.allow_offline else code
    if code == EXIT_VULNERABLE:
        _say("pip-audit: FAILED: see VULNERABLE lines, or packages that could not be audited")
    else:
        _say("pip-audit: no known vulnerabilities")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
