"""A private ``redis-server`` for tests that kill, restart or reconfigure their server.

The shared Redis on 6379 is never restarted or reconfigured: a test that needs to do
that starts its own server on a free port in its ``tmp_path``, with no persistence
unless it asks for some, and kills it at the end.

``RedisServer(..., tls=make_certificates(...))`` starts one that speaks TLS only (its
plain port closed), with a throwaway CA's certificate; ``command=`` runs another binary
that speaks the protocol (``valkey-server``: see ``valkey_server``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, and a server and a client certificate it signed (PEM files)."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    names: tuple[str, ...]  # what the server certificate is valid for


def make_certificates(directory: Path, names: Sequence[str] = ("localhost",)) -> TlsFiles:
    """Write a new CA, a server certificate for ``names`` (host names or IP addresses) and
    a client certificate into ``directory``: ``ca.pem``, ``server.pem``/``.key``,
    ``client.pem``/``.key``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Path:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    signs_certificates = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca_cert = (
        builder("Conveyor test CA", name("Conveyor test CA"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(signs_certificates, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    issued_by_ca = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def issue(
        subject: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        made = (
            builder(subject, ca_cert.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(issued_by_ca, critical=False)
        )
        if sans:
            made = made.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return made.sign(ca_key, hashes.SHA256()), key

    sans: list[x509.GeneralName] = []
    for each in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(each)))
        except ValueError:
            sans.append(x509.DNSName(each))
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = write(
        directory / "server.pem", *issue(names[0], ExtendedKeyUsageOID.SERVER_AUTH, sans)
    )
    client = write(
        directory / "client.pem", *issue("conveyor", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    )
    return TlsFiles(
        directory / "ca.pem", server, server.with_suffix(".key"), client,
        client.with_suffix(".key"), tuple(names),
    )  # fmt: skip


class RedisServer:
    """One ``redis-server`` process; ``restart()`` brings it back on the same port.

    With ``tls``, the server takes TLS connections only (clients need no certificate of
    their own unless ``"--tls-auth-clients", "yes"`` is among ``args``); ``command`` runs
    that instead of the ``redis-server`` on the ``PATH``.
    """

    def __init__(
        self,
        directory: Path,
        *args: str,
        tls: TlsFiles | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        if command is None:
            binary = shutil.which("redis-server")
            if binary is None:
                if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
                    pytest.fail("redis-server is not installed (CONVEYOR_REQUIRE_SERVICES=1)")
                pytest.skip("redis-server is not installed")
            command = [binary]
        self.command = list(command)
        self.directory = directory
        self.args = args
        self.tls = tls
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        if self.tls is not None:
            host = self.tls.names[0]
            return f"rediss://{host}:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        if self.tls is not None:
            return redis.Redis(
                host=self.tls.names[0], port=self.port, socket_timeout=5,
                ssl=True, ssl_ca_certs=str(self.tls.ca),
                ssl_certfile=str(self.tls.client_cert), ssl_keyfile=str(self.tls.client_key),
            )  # fmt: skip
        return redis.Redis(port=self.port, socket_timeout=5)

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no",
        ]  # fmt: skip

    def start(self) -> None:
        command = [
            *self.command,
            *self._listen(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            *self.args,
        ]
        log = self.directory / "server.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.command[-1]} did not start: see {log}") from None
                time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def kill_clients(self, kind: str) -> int:
        """``CLIENT KILL TYPE kind`` (normal, pubsub); returns how many were killed."""
        with self.client() as client:
            killed: int = client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
            return killed

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (scripts' own calls included)."""
        with self.client() as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}
