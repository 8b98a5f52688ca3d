"""config.check(): every signing key is checked, in every environment but an explicit dev/test one."""

from __future__ import annotations

import pytest

from avenue import create_app

GOOD_KEY = "k" * 64


@pytest.fixture
def environment(monkeypatch):
    """A production-like environment with a good key; tests change one variable at a time."""
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1")
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.delenv("SECRET_KEY_FALLBACKS", raising=False)
    monkeypatch.delenv("AVENUE_ENV", raising=False)
    return monkeypatch


def starts() -> bool:
    try:
        app = create_app()
    except RuntimeError:
        return False
    app.extensions["avenue.mongo"].client.close()
    return True


@pytest.mark.parametrize("fallbacks", ["dev", "change-me", "short", f"{GOOD_KEY},dev", f"secret,{GOOD_KEY}"],
                         ids=["dev", "change-me", "short", "good-then-dev", "secret-then-good"])
def test_production_refuses_an_insecure_fallback_key(environment, fallbacks):
    # With SECRET_KEY_FALLBACKS=dev a session cookie anyone can sign with "dev" logs in as admin.
    environment.setenv("SECRET_KEY_FALLBACKS", fallbacks)
    with pytest.raises(RuntimeError, match="SECRET_KEY_FALLBACKS holds an insecure key"):
        create_app()


def test_the_error_names_the_weak_fallback_by_position_never_by_value(environment):
    environment.setenv("SECRET_KEY_FALLBACKS", f"{GOOD_KEY},change-me")
    with pytest.raises(RuntimeError) as refused:
        create_app()
    assert "number 2 of the list" in str(refused.value) and "change-me" not in str(refused.value)
    environment.setenv("SECRET_KEY_FALLBACKS", f"{'o' * 40},{GOOD_KEY}")
    assert starts()  # long random fallbacks are what rotation needs


@pytest.mark.parametrize("env", ["staging", "prod", "preview", "developement", "qa"])
def test_any_environment_but_an_explicit_dev_or_test_one_is_checked_like_production(environment, env):
    environment.setenv("AVENUE_ENV", env)
    environment.setenv("SECRET_KEY", "dev")
    with pytest.raises(RuntimeError, match="SECRET_KEY is missing or insecure"):
        create_app()
    environment.setenv("SECRET_KEY", GOOD_KEY)
    environment.setenv("SECRET_KEY_FALLBACKS", "dev")
    with pytest.raises(RuntimeError, match="SECRET_KEY_FALLBACKS"):
        create_app()


def test_only_development_testing_and_test_relax_the_check(environment):
    """``make run`` (AVENUE_ENV=development) and the tests keep working with any key."""
    environment.setenv("SECRET_KEY", "dev")
    environment.setenv("SECRET_KEY_FALLBACKS", "dev")
    relaxed = {}
    for env in ("development", "testing", "test", "staging", ""):
        environment.setenv("AVENUE_ENV", env)
        relaxed[env] = starts()
    assert relaxed == {"development": True, "testing": True, "test": True, "staging": False, "": False}
