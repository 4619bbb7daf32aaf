"""Secrets: generated on a developer's machine only; a deployment refuses to start without
explicit ones (each replica would otherwise make its own keys)."""

from __future__ import annotations

import pytest

from shared.config import MissingSecret, Settings

GOOD = "k" * 40


def test_development_generates_each_secret_once_into_the_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path, env="development")
    first = s.secret("pii_key")
    assert len(first) >= 32 and Settings(data_dir=tmp_path).secret("pii_key") == first
    assert (tmp_path / "secrets" / "pii_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("env", ["production", "staging", "Production"])
def test_a_deployment_refuses_generated_secrets(tmp_path, env):
    s = Settings(data_dir=tmp_path, env=env, jwt_secret=GOOD, pii_key=GOOD)
    with pytest.raises(MissingSecret, match="ELDERCARE_PII_HASH_KEY is not set"):
        s.secret("jwt_secret")  # any secret: the deployment is incomplete
    assert not (tmp_path / "secrets").exists()  # nothing was generated


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("CHANGE_ME_TO_A_LONG_RANDOM_STRING", "placeholder"),
        ("dev-only-insecure-jwt-secret-do-not-use-in-production", "placeholder"),
        ("short", "shorter than 32"),
    ],
)
def test_a_deployment_refuses_placeholders_and_short_keys(tmp_path, value, why):
    s = Settings(data_dir=tmp_path, env="production", jwt_secret=value, pii_key=GOOD)
    s = s.model_copy(update={"pii_hash_key": GOOD})
    with pytest.raises(MissingSecret, match=why):
        s.check_secrets()


def test_a_deployment_with_explicit_secrets_starts(tmp_path):
    s = Settings(
        data_dir=tmp_path, env="production", jwt_secret=GOOD, pii_key=GOOD, pii_hash_key=GOOD
    )
    assert s.secret("pii_key") == GOOD


def test_an_app_refuses_to_start_in_production_without_keys(tmp_path):
    from services.registry.app import create_app

    s = Settings(data_dir=tmp_path, env="production", database_url="postgresql://x@127.0.0.1:1/x")
    with pytest.raises(MissingSecret):
        create_app(s)
