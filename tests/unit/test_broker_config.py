"""The Mosquitto password file and ACL as pure functions of the registry's gateways."""

from __future__ import annotations

import argparse
import os
import stat

import pytest

from services.telemetry import broker_config as bc
from shared.mqtt_credentials import mosquitto_hash, verify

HASH_A = mosquitto_hash("a-secret", salt=b"0123456789ab")
HASH_B = mosquitto_hash("b-secret", salt=b"ba9876543210")
SERVICES = {"ingest": bc.ROLE_INGEST}

BAD_USERNAMES = [
    "",
    "x",  # too short for the registry's pattern
    "gw#1",
    "gw+1",
    "gw/1",
    "gw 1",
    "gw-1\n",  # `$` alone would let a trailing newline through
    "gw-1\nuser ingest",
    "gw-1\r",
    "gw:1",  # mosquitto splits password-file lines on the first ':'
    "-gw1",
    "$SYS",
    "g" * 65,
    None,
]


def blocks(acl: str) -> dict[str, list[str]]:
    """``user`` → its ``topic`` lines, asserting every user appears once."""
    result: dict[str, list[str]] = {}
    current = None
    for line in acl.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("user "):
            current = line.removeprefix("user ")
            assert current not in result, f"user {current} twice"
            result[current] = []
        else:
            assert current is not None, f"topic line before any user: {line}"
            result[current].append(line)
    return result


def test_password_file_lines_sorted_by_username():
    # by username, not by line: "gwx:" would sort after "gwx1:" as text
    text = bc.password_file([("gwx1", HASH_B), ("gwx", HASH_A), ("ingest", HASH_A)])
    assert text == f"gwx:{HASH_A}\ngwx1:{HASH_B}\ningest:{HASH_A}\n"
    assert bc.password_file([]) == ""


@pytest.mark.parametrize("username", BAD_USERNAMES)
def test_password_file_refuses_unsafe_usernames(username):
    with pytest.raises(ValueError):
        bc.password_file([(username, HASH_A)])


@pytest.mark.parametrize(
    "bad_hash",
    [
        "plaintext",
        "",
        None,
        HASH_A + "\nintruder:" + HASH_B,
        HASH_A + "\n",
        "$6$abc$def",
        "$7$$abc$def",
        HASH_A.replace("$7$", "$7$x"),
    ],
)
def test_password_file_refuses_anything_but_a_7_hash(bad_hash):
    with pytest.raises(ValueError):
        bc.password_file([("gw-0001", bad_hash)])


def test_password_file_refuses_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        bc.password_file([("gw-0001", HASH_A), ("gw-0001", HASH_B)])


def test_acl_gateway_blocks_limit_each_gateway_to_its_prefix():
    acl = bc.acl_file(["gw-b", "gw-a.2", "gw-a"], service_users={})
    parsed = blocks(acl)
    assert list(parsed) == ["gw-a", "gw-a.2", "gw-b"]
    assert parsed["gw-a"] == [
        "topic write eldercare/v1/gw-a/#",
        "topic read eldercare/v1/gw-a/cmd/#",
    ]
    for gateway, lines in parsed.items():
        assert all(f"eldercare/v1/{gateway}/" in line for line in lines)
    assert "pattern" not in acl  # no %u patterns: every grant names its user


def test_acl_service_users_come_first_with_their_roles():
    acl = bc.acl_file(
        ["gw-0001"],
        service_users={"ops": bc.ROLE_PUBLISHER, "ingest": bc.ROLE_INGEST, "emulator": "publisher"},
    )
    parsed = blocks(acl)
    assert list(parsed) == ["emulator", "ingest", "ops", "gw-0001"]
    assert parsed["ingest"] == [
        "topic read eldercare/v1/#",
        "topic read $share/ingest/eldercare/v1/#",
    ]
    assert parsed["emulator"] == parsed["ops"] == ["topic write eldercare/v1/#"]
    # nobody but the publishers writes outside their own prefix; ingest never writes
    writers_of_everything = [
        u for u, lines in parsed.items() if "topic write eldercare/v1/#" in lines
    ]
    assert writers_of_everything == ["emulator", "ops"]
    assert not any("write" in line for line in parsed["ingest"])


def test_acl_every_line_is_one_directive():
    acl = bc.acl_file(["gw-0001", "gw-0002"], service_users=SERVICES)
    for line in acl.splitlines():
        assert line == "" or line.startswith(("# ", "user ", "topic read ", "topic write ")), line


@pytest.mark.parametrize("username", BAD_USERNAMES)
def test_acl_refuses_unsafe_usernames(username):
    with pytest.raises(ValueError):
        bc.acl_file([username], service_users={})
    with pytest.raises(ValueError):
        bc.acl_file([], service_users={username: bc.ROLE_INGEST})


def test_acl_refuses_a_gateway_named_like_a_service_user():
    # Mosquitto merges blocks of one user: this gateway would read every home's telemetry.
    with pytest.raises(ValueError, match="clashes"):
        bc.acl_file(["ingest"], service_users=SERVICES)


def test_acl_refuses_duplicates_and_unknown_roles():
    with pytest.raises(ValueError, match="duplicate"):
        bc.acl_file(["gw-0001", "gw-0001"], service_users={})
    with pytest.raises(ValueError, match="role"):
        bc.acl_file([], service_users={"ops": "admin"})


def test_service_user_hash_is_a_mosquitto_hash_of_the_password():
    hashed = bc.service_user_hash("ingest-pw")
    assert hashed.startswith("$7$") and verify("ingest-pw", hashed)
    assert not verify("other", hashed)
    assert bc.password_file([("ingest", hashed)])  # accepted by the file's own check
    with pytest.raises(ValueError):
        bc.service_user_hash("")


def test_usable_gateways_skips_bad_rows_instead_of_failing_all(caplog):
    rows = [("gw-0001", HASH_A), ("ingest", HASH_B), ("gw:x", HASH_A), ("gw-0002", "plain")]
    assert bc._usable_gateways(rows, {"ingest"}) == [("gw-0001", HASH_A)]
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 3


def test_atomic_write_sets_mode_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "passwd"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    bc._write_atomic(target, "new\n", mode=0o600, owner=None)
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]


def test_cli_options_and_missing_password(monkeypatch, capsys):
    monkeypatch.delenv(bc.INGEST_PASSWORD_ENV, raising=False)
    parser = argparse.ArgumentParser()
    bc.add_arguments(parser)
    args = parser.parse_args([])
    assert str(args.out) == "deploy/mosquitto" and args.ingest_password is None
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    from shared.config import get_settings

    get_settings.cache_clear()
    try:
        assert bc.run(args) == 2
    finally:
        get_settings.cache_clear()
    assert "ELDERCARE_MQTT_INGEST_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv(bc.INGEST_PASSWORD_ENV, "from-env")
    parser = argparse.ArgumentParser()
    bc.add_arguments(parser)
    assert parser.parse_args([]).ingest_password == "from-env"
    assert parser.parse_args(["--ingest-password", "x", "--out", "d"]).ingest_password == "x"
