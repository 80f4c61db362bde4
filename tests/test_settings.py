"""Settings: defaults < YAML < environment < flags, and one-line errors that leak nothing."""

from __future__ import annotations

import datetime
import hashlib

import pytest

from aegis_tornado.assembly import build_policies
from aegis_tornado.settings import SCHEMA, ConfigError, Settings, key_entry, load_settings

KEY = "73bb1be4017875dc532cd855c009b11ce38343f7c786edeee13c5317b1a303be"
ENV = {"GITEA_URL": "https://git.example.com", "GITEA_TOKEN": "bot-token", "MCP_API_KEYS": KEY}


def test_defaults():
    settings = load_settings(environ=ENV)
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.auth_enabled and settings.max_auth_failures == 5
    assert settings.auth_failure_window == 300
    assert settings.max_body_bytes == 1048576 and settings.max_sessions == 1000
    assert not settings.demo_mode


def test_yaml_then_env_then_flags(tmp_path):
    config = tmp_path / "aegis.yaml"
    config.write_text("max_auth_failures: 9\nport: 9000\nlog_level: warning\n")
    settings = load_settings(str(config), environ={**ENV, "MCP_PORT": "9100"})
    assert settings.max_auth_failures == 9  # from YAML
    assert settings.port == 9100  # env beats YAML
    assert settings.log_level == "warning"
    flagged = load_settings(
        str(config), environ={**ENV, "MCP_PORT": "9100"}, overrides={"port": "9200", "host": None}
    )
    assert flagged.port == 9200 and flagged.host == "127.0.0.1"


def test_precedence_flags_env_dotenv_yaml_defaults(tmp_path):
    config = tmp_path / "aegis.yaml"
    config.write_text("max_auth_failures: 9\nport: 9000\nlog_level: warning\nsession_ttl: 600\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport MCP_PORT=9100\nLOG_LEVEL='error'\nMAX_AUTH_FAILURES=7 # why\n"
        f'GITEA_URL=https://from-dotenv.example\nGITEA_TOKEN="t"\nMCP_API_KEYS={KEY}\n'
    )
    environ = {"GITEA_URL": "https://from-environment.example", "MCP_PORT": "9200"}
    settings = load_settings(
        str(config), environ=environ, overrides={"port": "9300"}, env_file=str(dotenv)
    )
    assert settings.port == 9300  # flag
    assert settings.gitea_url == "https://from-environment.example"  # environment over .env
    assert settings.log_level == "error" and settings.max_auth_failures == 7  # .env over YAML
    assert settings.session_ttl == 600  # YAML over default
    assert settings.auth_tracked_ips == 20_000  # default
    assert settings.gitea_token == "t" and settings.api_keys[0].digest  # quotes, export


def test_dotenv_errors_name_the_file_and_never_the_value(tmp_path):
    dotenv = tmp_path / "prod.env"
    dotenv.write_text("MCP_API_KEYS=deadbeefdeadbeef\n")
    with pytest.raises(ConfigError) as error:
        load_settings(environ={}, env_file=str(dotenv))
    assert str(error.value).startswith(f"MCP_API_KEYS (in {dotenv}): key #1 is too short")
    assert "deadbeef" not in str(error.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(environ={}, env_file=str(tmp_path / "missing.env"))


def test_yaml_keys_with_metadata(tmp_path):
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    config = tmp_path / "aegis.yaml"
    config.write_text(
        "gitea_url: https://git.example.com\n"
        "api_keys:\n"
        f"  - key: {KEY}\n    name: chatgpt\n    created: 2026-11-01\n"
        f"  - sha256: {digest[:-1]}0\n"
        f"  - 'sha256:{'1' * 64}'\n"
    )
    settings = load_settings(str(config), environ={"GITEA_ANONYMOUS": "true"})
    first = settings.api_keys[0]
    assert first.name == "chatgpt" and first.created == datetime.date(2026, 11, 1)
    assert first.digest == digest
    assert len(settings.api_keys) == 3


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"MCP_API_KEYS": "abc"}, "MCP_API_KEYS: key #1 is too short (3 characters"),
        ({"MCP_API_KEYS": f"{KEY},{'g' * 64}"}, "MCP_API_KEYS: key #2 is not hexadecimal"),
        ({"AUTH_FAILURE_WINDOW": "five"}, "AUTH_FAILURE_WINDOW: must be a number of seconds"),
        ({"MAX_AUTH_FAILURES": "0"}, "MAX_AUTH_FAILURES: must be between 1 and"),
        ({"MCP_PORT": "70000"}, "MCP_PORT: must be between 0 and 65535"),
        ({"AUTH_ENABLED": "maybe"}, "AUTH_ENABLED: must be true or false"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: must be one of"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "TRUSTED_PROXIES: 'proxy' is not an IP"),
        ({"GITEA_URL": "ftp://x"}, "GITEA_URL: must be an http:// or https:// URL"),
        (
            {"GITEA_URL": "https://bot:pw@git.example.com"},
            "GITEA_URL: must not contain credentials",
        ),
        (
            {"ALLOWED_ORIGINS": "chat.openai.com"},
            "ALLOWED_ORIGINS: 'chat.openai.com' is not an origin",
        ),
    ],
)
def test_invalid_values_name_the_setting(env, expected):
    with pytest.raises(ConfigError) as error:
        load_settings(environ={**ENV, **env})
    message = str(error.value)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"REPO_DENYLIST": "justaname"}, "REPO_DENYLIST: invalid deny pattern 'justaname'"),
        ({"REPO_ALLOWLIST": "a/b/c"}, "REPO_ALLOWLIST: invalid allow pattern"),
        ({"SENSITIVE_PATHS": "a\\b"}, "SENSITIVE_PATHS: invalid sensitive-path glob"),
    ],
)
def test_policy_patterns_are_checked_where_the_policies_are_built(env, expected):
    settings = load_settings(environ={**ENV, **env})  # plain values: settings hold no policy
    with pytest.raises(ConfigError) as error:
        build_policies(settings)
    assert str(error.value).startswith(expected)


def test_sensitive_paths_unset_means_the_policy_default():
    settings = load_settings(environ=ENV)
    assert settings.sensitive_paths is None
    _, paths = build_policies(settings)
    assert ".env*" in paths.globs
    _, only_md = build_policies(load_settings(environ={**ENV, "SENSITIVE_PATHS": "*.md"}))
    assert only_md.globs == ("*.md",)


def test_settings_module_holds_plain_values_only():
    import aegis_tornado.settings as module

    source = open(module.__file__).read()
    assert "tools" not in {
        line.split()[1].split(".")[1]
        for line in source.splitlines()
        if line.startswith("from .") and len(line.split()[1].split(".")) > 1
    }


def test_gitea_url_without_token_needs_an_explicit_anonymous_setting():
    base = {"GITEA_URL": "https://git.example.com", "MCP_API_KEYS": KEY}
    with pytest.raises(ConfigError) as error:
        load_settings(environ=base)
    assert str(error.value).startswith("GITEA_TOKEN: not set, but GITEA_URL is")
    assert "GITEA_ANONYMOUS=true" in str(error.value)
    anonymous = load_settings(environ={**base, "GITEA_ANONYMOUS": "true"})
    assert anonymous.gitea_anonymous and anonymous.gitea_token is None
    with pytest.raises(ConfigError, match="GITEA_ANONYMOUS: true, but GITEA_TOKEN is set"):
        load_settings(environ={**base, "GITEA_ANONYMOUS": "true", "GITEA_TOKEN": "t"})
    with pytest.raises(ConfigError, match="GITEA_ANONYMOUS: set GITEA_URL too"):
        load_settings(environ={"MCP_API_KEYS": KEY, "GITEA_ANONYMOUS": "true"})


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("abc", ("abc", None, None)),
        ({"sha256": "ab" * 32, "name": "ci"}, ("sha256:" + "ab" * 32, "ci", None)),
        (
            {"key": KEY, "created": datetime.date(2026, 11, 1)},
            (KEY, None, datetime.date(2026, 11, 1)),
        ),
    ],
)
def test_key_entry_reads_strings_and_mappings(entry, expected):
    assert key_entry(entry) == expected


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"key": KEY, "sha256": "ab" * 32}, "needs exactly one of 'key' or 'sha256'"),
        ({"key": 12345}, "'key' must be a quoted string"),
        ({"key": KEY, "colour": "red"}, "unknown field(s): colour"),
        (7, "must be a string or a mapping"),
    ],
)
def test_key_entry_errors_never_show_the_key(entry, message):
    with pytest.raises(ValueError) as error:
        key_entry(entry)
    assert message in str(error.value) and KEY not in str(error.value)


def test_key_errors_never_show_the_key():
    secretish = "deadbeef" * 3  # too short, but still a secret
    with pytest.raises(ConfigError) as error:
        load_settings(environ={**ENV, "MCP_API_KEYS": f"{KEY},{secretish}"})
    assert secretish not in str(error.value) and KEY not in str(error.value)


def test_no_keys_with_auth_enabled_is_refused():
    with pytest.raises(ConfigError, match="No API keys configured in environment"):
        load_settings(environ={"GITEA_URL": "https://git.example.com"})
    # Demo mode generates a key at start-up instead; auth disabled needs none.
    assert load_settings(environ={}).demo_mode
    assert not load_settings(
        environ={"GITEA_URL": "https://g.example", "GITEA_TOKEN": "t", "AUTH_ENABLED": "false"}
    ).auth_enabled


def test_yaml_syntax_error_names_the_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("port: 8080\napi_keys: [unclosed\nlog_level: info\n")
    with pytest.raises(ConfigError) as error:
        load_settings(str(config), environ={})
    assert "YAML syntax error at line" in str(error.value)


def test_yaml_unknown_setting_and_wrong_shape(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(str(config), environ={})
    config.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(str(config), environ={})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(str(tmp_path / "missing.yaml"), environ={})


def test_schema_is_complete_and_documented():
    names = {s.name for s in SCHEMA}
    assert names == set(Settings.__dataclass_fields__)
    assert all(s.help and s.env.isupper() for s in SCHEMA)
    assert {s.env for s in SCHEMA} >= {
        "GITEA_URL",
        "GITEA_TOKEN",
        "MCP_HOST",
        "MCP_PORT",
        "MCP_API_KEYS",
        "AUTH_ENABLED",
        "MAX_AUTH_FAILURES",
        "AUTH_FAILURE_WINDOW",
        "AUDIT_LOG_PATH",
        "LOG_LEVEL",
        "TRUSTED_PROXIES",
        "ALLOWED_ORIGINS",
        "MAX_BODY_BYTES",
        "MAX_SESSIONS",
        "REPO_ALLOWLIST",
        "REPO_DENYLIST",
        "SENSITIVE_PATHS",
        "MAX_RESULT_BYTES",
        "GITEA_TIMEOUT",
        "GITEA_RETRIES",
        "GITEA_PUBLIC_URL",
    }


def test_example_files_document_every_setting_and_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env_example = (root / ".env.example").read_text()
    yaml_example = (root / "conf" / "aegis.example.yaml").read_text()
    for setting in SCHEMA:
        assert f"{setting.env}=" in env_example, setting.env
        assert f"{setting.name}:" in yaml_example, setting.name
    settings = load_settings(
        str(root / "conf" / "aegis.example.yaml"), environ={"GITEA_TOKEN": "bot-token"}
    )
    assert settings.api_keys[0].name == "chatgpt-workspace"
