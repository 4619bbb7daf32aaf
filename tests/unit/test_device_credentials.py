"""shared.mqtt_credentials: Mosquitto $7$ password hashes."""

from __future__ import annotations

import base64
import getpass
import hashlib
import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

from shared.mqtt_credentials import (
    ITERATIONS,
    mosquitto_hash,
    new_password,
    topic_prefix,
    verify,
)

HASH_RE = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$")


def test_hash_format():
    stored = mosquitto_hash("s3cret")
    m = HASH_RE.match(stored)
    assert m, stored
    assert int(m.group(1)) == ITERATIONS == 101
    assert len(base64.b64decode(m.group(2))) == 12
    assert len(base64.b64decode(m.group(3))) == 64


def test_hash_is_pbkdf2_sha512():
    salt = bytes(range(12))
    stored = mosquitto_hash("pass", salt=salt)
    digest = hashlib.pbkdf2_hmac("sha512", b"pass", salt, 101)
    assert stored == f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert mosquitto_hash("pass", salt=salt, iterations=5).startswith("$7$5$")


def test_random_salt():
    assert mosquitto_hash("same") != mosquitto_hash("same")


def test_verify():
    stored = mosquitto_hash("correct horse")
    assert verify("correct horse", stored) is True
    assert verify("correct horsE", stored) is False
    assert verify("", stored) is False
    assert verify("密码", mosquitto_hash("密码")) is True


def test_verify_respects_stored_iterations():
    stored = mosquitto_hash("pw", iterations=1000)
    assert verify("pw", stored) is True
    assert verify("pw", stored.replace("$7$1000$", "$7$101$")) is False


@pytest.mark.parametrize("stored", ["", "plain", "$6$101$AAAA$BBBB", "$7$101$AAAA", "a$b$c$d$e$f"])
def test_verify_malformed_is_false(stored):
    assert verify("pw", stored) is False


@pytest.mark.parametrize("stored", ["$7$abc$AAAA$BBBB", "$7$0$AAAA$BBBB", "$7$101$abc$BBBB"])
def test_verify_malformed_never_raises(stored):
    assert verify("pw", stored) is False


def test_new_password_and_topic():
    a, b = new_password(), new_password()
    assert a != b
    assert len(a) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]+", a)
    assert topic_prefix("gw-1") == "eldercare/v1/gw-1/"


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd absent")
def test_cross_check_with_mosquitto_passwd(tmp_path):
    pwfile = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pwfile), "gw-1", "pass word!"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    user, stored = pwfile.read_text().strip().split(":", 1)
    assert user == "gw-1"
    assert HASH_RE.match(stored), stored
    assert verify("pass word!", stored) is True
    assert verify("pass word", stored) is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect_code(port: int, username: str, password: str) -> int:
    """MQTT 3.1.1 CONNACK return code for a CONNECT with these credentials (0 = accepted)."""

    def field(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    body = field(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 10)
    body += field(b"unit-test") + field(username.encode()) + field(password.encode())
    packet = bytes([0x10, len(body)]) + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(packet)
        connack = sock.recv(4)
    assert connack[0] == 0x20, connack
    return connack[3]


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto broker absent")
def test_real_broker_accepts_our_hash(tmp_path):
    port = _free_port()
    (tmp_path / "passwd").write_text("gw-2:" + mosquitto_hash("pw-2") + "\n")
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
        f"password_file {tmp_path / 'passwd'}\n"
        # Run as root, mosquitto would switch to user "mosquitto" and lose access to tmp_path.
        f"user {getpass.getuser()}\n"
    )
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    pytest.fail("mosquitto did not start")
                time.sleep(0.05)
        assert _connect_code(port, "gw-2", "pw-2") == 0
        assert _connect_code(port, "gw-2", "wrong") in {4, 5}
    finally:
        broker.terminate()
        broker.wait(timeout=10)
