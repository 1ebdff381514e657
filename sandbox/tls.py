"""A throw-away certificate authority for the local SMTP server (trustme).

The CA certificate is written to a PEM file so that clients can trust it the way production code
trusts a real CA: through ``SSL_CERT_FILE`` and :func:`ssl.create_default_context`.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import weakref
from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "host.docker.internal")


class TestCa:
    """A local CA with one server certificate for ``localhost``, ``127.0.0.1`` and Docker's host.

    Attributes
    ----------
    ca_file
        PEM file of the CA certificate (point ``SSL_CERT_FILE`` at it); removed with the object.

    Examples
    --------
    >>> ca = TestCa()
    >>> ca.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    True
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert(*SERVER_NAMES)
        directory = Path(tempfile.mkdtemp(prefix="ses-smtp-ca-"))
        self.ca_file = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._finalizer = weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)

    def server_ssl_context(self) -> ssl.SSLContext:
        """Return a server-side context presenting the certificate (no client certificates)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """Return a client context that trusts this CA only, with hostname verification."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def remove(self) -> None:
        """Delete the CA file now instead of at garbage collection."""
        self._finalizer()
