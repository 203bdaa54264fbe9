"""Configuration: defaults that work with nothing set, `.env`, and one clear line per bad value."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli_helpers import run_duan8, without

from bot.config import DEFAULT_PLAN, ConfigError, load_config

# Everything the service reads; stripped from the inherited environment so a developer's own
# settings never leak into a test.
CONFIG_VARS = (
    "DATABASE_URL", "SECRET_KEY", "PORT", "TZ_NAME", "PLAN_FILE", "MEDIA_DIR", "MAX_PHOTO_BYTES",
    "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_API_URL",
    "FB_PAGE_ACCESS_TOKEN", "FB_APP_SECRET", "FB_VERIFY_TOKEN", "FB_GRAPH_URL",
    "ZALO_APP_ID", "ZALO_APP_SECRET", "ZALO_OA_SECRET_KEY", "ZALO_OA_ACCESS_TOKEN",
    "ZALO_OA_REFRESH_TOKEN", "ZALO_API_URL", "ZALO_OAUTH_URL",
    "ZALO_BOT_TOKEN", "ZALO_BOT_WEBHOOK_SECRET", "ZALO_BOT_API_URL",
    "DUAN8_ENV_FILE", "DUAN8_INSTANCE",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(extra)
    return env


# --- defaults ------------------------------------------------------------------------------


def test_defaults_with_nothing_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config({})

    instance = tmp_path / "instance"
    assert config.instance_path == instance
    assert config.database_url == f"sqlite:///{instance / 'duan8.db'}"
    assert config.is_sqlite
    assert instance.is_dir()  # created so SQLite can make its file there
    assert config.port == 5000
    assert config.tz_name == "Asia/Ho_Chi_Minh"
    assert config.tz == ZoneInfo("Asia/Ho_Chi_Minh")
    assert config.plan_file == DEFAULT_PLAN
    assert DEFAULT_PLAN.name == "ninh-thuan-2022-2025.yaml" and DEFAULT_PLAN.is_file()
    assert config.telegram_api_url == "https://api.telegram.org"
    assert config.fb_graph_url == "https://graph.facebook.com"
    assert config.media_path == instance / "media"
    # A channel with no token is off; web chat and console are always on.
    assert config.channel_enabled("webchat") and config.channel_enabled("console")
    for channel in ("telegram", "facebook", "zalo", "zalo_bot"):
        assert not config.channel_enabled(channel)


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    env = {"DUAN8_ENV_FILE": str(tmp_path / "absent.env")}
    first = load_config(env, instance_path=instance)

    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text(encoding="utf-8") == first.secret_key
    assert len(first.secret_key) >= 32

    second = load_config(env, instance_path=instance)
    assert second.secret_key == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # Never a constant: another deployment gets another key.
    other = load_config(env, instance_path=tmp_path / "other")
    assert other.secret_key != first.secret_key


def test_secret_key_from_the_environment_writes_no_file(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    config = load_config(
        {"SECRET_KEY": "from-env", "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=instance,
    )
    assert config.secret_key == "from-env"
    assert not (instance / "secret_key").exists()


def test_instance_dir_from_duan8_instance(tmp_path: Path) -> None:
    config = load_config(
        {"DUAN8_INSTANCE": str(tmp_path / "elsewhere"),
         "DUAN8_ENV_FILE": str(tmp_path / "absent.env")}
    )
    assert config.instance_path == tmp_path / "elsewhere"
    assert config.database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'duan8.db'}"
    assert (tmp_path / "elsewhere" / "secret_key").is_file()


# --- .env ----------------------------------------------------------------------------------


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "# settings for this office\n"
        "\n"
        f"DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}\n"
        "export TZ_NAME=Asia/Bangkok\n"
        "PORT=8080\n"
        "TELEGRAM_BOT_TOKEN='123:abc'\n"
        'SECRET_KEY="dotenv secret"\n',
        encoding="utf-8",
    )
    config = load_config({"PORT": "9090"})

    assert config.database_url == f"sqlite:///{tmp_path / 'from-dotenv.db'}"
    assert config.tz_name == "Asia/Bangkok"
    assert config.port == 9090  # the environment overrides the file
    assert config.telegram_bot_token == "123:abc"  # quotes removed
    assert config.secret_key == "dotenv secret"
    assert config.channel_enabled("telegram")


def test_dotenv_file_named_by_duan8_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("TZ_NAME=UTC\nPLAN_FILE=off\n", encoding="utf-8")
    config = load_config({"DUAN8_ENV_FILE": str(env_file)}, instance_path=tmp_path / "i")
    assert config.tz_name == "UTC"
    assert config.plan_file is None


def test_bad_dotenv_line_names_the_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=8080\nthis is not a setting\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config({"DUAN8_ENV_FILE": str(env_file)}, instance_path=tmp_path / "i")
    assert str(env_file) in str(err.value)
    assert "line 2" in str(err.value)


# --- DATABASE_URL --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgres_url_gets_the_psycopg_driver(tmp_path: Path, scheme: str) -> None:
    config = load_config(
        {"DATABASE_URL": f"{scheme}://duan8:p%40ss@db.example:5433/duan8",
         "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=tmp_path / "i",
    )
    # The password survives the rewrite, still escaped.
    assert config.database_url == "postgresql+psycopg://duan8:p%40ss@db.example:5433/duan8"
    assert not config.is_sqlite


def test_explicit_psycopg_url_is_kept(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    config = load_config(
        {"DATABASE_URL": url, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=tmp_path / "i",
    )
    assert config.database_url == url


def test_sqlite_url_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'duan8.db'}"
    config = load_config(
        {"DATABASE_URL": url, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=tmp_path / "i",
    )
    assert config.database_url == url
    assert (tmp_path / "deep" / "er").is_dir()


# --- bad values ----------------------------------------------------------------------------

BAD_VALUES = [
    ("DATABASE_URL", "not a url"),
    ("DATABASE_URL", "://"),
    ("DATABASE_URL", "postgresql://u@h:notaport/db"),
    ("DATABASE_URL", "mysql://u@h/db"),
    ("DATABASE_URL", "postgresql+nodriver://u@h/db"),
    ("DATABASE_URL", "sqlite:////proc/duan8-nowhere/duan8.db"),
    ("TZ_NAME", "Mars/Olympus_Mons"),
    ("TZ_NAME", "../../etc/passwd"),
    ("PLAN_FILE", "/nonexistent/plan.yaml"),
    ("PORT", "abc"),
    ("PORT", "0"),
    ("PORT", "70000"),
    ("PORT", "-1"),
    ("MAX_PHOTO_BYTES", "5MB"),
    ("TELEGRAM_API_URL", "ftp://api.telegram.org"),
    ("TELEGRAM_API_URL", "api.telegram.org"),
    ("FB_GRAPH_URL", "graph.facebook.com"),
    ("ZALO_API_URL", "file:///etc/passwd"),
    ("ZALO_BOT_API_URL", "bot-api.zapps.me"),
    ("TELEGRAM_RATE_LIMIT", "fast"),
    ("TELEGRAM_RATE_LIMIT", "29"),
    ("FB_RATE_LIMIT", "0/s"),
    ("ZALO_RATE_LIMIT", "chat 1/hour"),
    ("ZALO_BOT_RATE_LIMIT", "room 2/s"),
    ("WEB_BODY_SECONDS", "0"),
    ("WEB_BODY_IDLE_SECONDS", "5s"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_value_raises_config_error_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            {name: value, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
            instance_path=tmp_path / "instance",
        )
    message = str(err.value)
    assert name in message
    assert "\n" not in message


def test_bad_value_in_dotenv_is_named_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TZ_NAME=Nowhere/Land\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="TZ_NAME"):
        load_config({"DUAN8_ENV_FILE": str(env_file)}, instance_path=tmp_path / "i")


def test_plan_file_can_be_turned_off(tmp_path: Path) -> None:
    for off in ("off", "none", "OFF"):
        config = load_config(
            {"PLAN_FILE": off, "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
            instance_path=tmp_path / "i",
        )
        assert config.plan_file is None, off


def test_plan_file_is_used_when_present(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(DEFAULT_PLAN.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_config(
        {"PLAN_FILE": str(plan), "DUAN8_ENV_FILE": str(tmp_path / "absent.env")},
        instance_path=tmp_path / "i",
    )
    assert config.plan_file == plan


# --- through the real command --------------------------------------------------------------

CLI_BAD_VALUES = [
    ("DATABASE_URL", "not a url"),
    ("DATABASE_URL", "postgresql://u@h:notaport/db"),
    ("DATABASE_URL", "postgresql+nodriver://u@h/db"),
    ("DATABASE_URL", "sqlite:////proc/duan8-nowhere/duan8.db"),
    # Parses, but nothing listens there: still one line, not a traceback.
    ("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/duan8"),
    ("TZ_NAME", "Mars/Olympus_Mons"),
    ("PLAN_FILE", "/nonexistent/plan.yaml"),
    ("PORT", "abc"),
    ("TELEGRAM_API_URL", "ftp://api.telegram.org"),
]


def bad_value_env(cwd: Path, name: str, value: str) -> dict[str, str]:
    """The settings a command in `cwd` sees: a database of its own, and one bad value."""
    return {"DUAN8_INSTANCE": str(cwd / "instance"), "DATABASE_URL": f"sqlite:///{cwd / 'cli.db'}",
            name: value}


def assert_one_line_exit_2(name: str, value: str, result: subprocess.CompletedProcess[str]
                           ) -> None:
    case = f"{name}={value!r}: {result.stderr}"
    assert result.returncode == 2, case
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, case
    assert lines[0].startswith("error:"), case
    assert name in lines[0], case
    assert "Traceback" not in result.stderr, case
    assert result.stdout == "", case


def test_cli_bad_values_are_one_line_and_exit_2(tmp_path: Path) -> None:
    """Each bad value through the command in this process. One also goes through a real process,
    running meanwhile: only there would a line a driver writes outside Python reach stderr."""
    name, value = "DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/duan8"
    assert (name, value) in CLI_BAD_VALUES
    process_cwd = tmp_path / "process"
    process_cwd.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "plan", "show"], cwd=process_cwd,
                            env=clean_env(**bad_value_env(process_cwd, name, value)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for index, (bad_name, bad_value) in enumerate(CLI_BAD_VALUES):
            cwd = tmp_path / str(index)
            cwd.mkdir()
            result = run_duan8("plan", "show", cwd=cwd, env=without(
                CONFIG_VARS, **bad_value_env(cwd, bad_name, bad_value)))
            assert_one_line_exit_2(bad_name, bad_value, result)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert_one_line_exit_2(name, value, subprocess.CompletedProcess(
        proc.args, proc.returncode, stdout, stderr))


def test_cli_reads_dotenv_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TZ_NAME=Nowhere/Land\n", encoding="utf-8")
    result = run_duan8("plan", "show", cwd=tmp_path,
                       env=without(CONFIG_VARS, DUAN8_INSTANCE=str(tmp_path / "instance")))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: TZ_NAME")


def test_workers_starting_together_agree_on_one_secret_key(tmp_path):
    """gunicorn forks its workers at once on a new machine: they must share one signing key."""
    import multiprocessing

    from bot.config import _secret_key

    for trial in range(10):
        instance = tmp_path / f"trial{trial}"
        with multiprocessing.get_context("fork").Pool(4) as pool:
            keys = pool.map(_secret_key, [instance] * 4)
        assert len(set(keys)) == 1
        assert (instance / "secret_key").read_text(encoding="utf-8") == keys[0]
        assert oct((instance / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_importing_the_channels_sets_no_environment_variable(tmp_path: Path) -> None:
    script = ("import os, bot.channels, bot.channels.telegram.outbound, bot.worker; "
              "print('PTB_TIMEDELTA' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "False", result.stderr


def test_a_429_is_read_in_seconds_whatever_the_library_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telegram.error import RetryAfter

    from bot.channels.telegram.outbound import _failure

    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    assert _failure(RetryAfter(7)).retry_after == 7.0  # seconds, as before the change
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    assert _failure(RetryAfter(7)).retry_after == 7.0  # a timedelta, as it will be


def test_dotenv_values_are_not_expanded(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=a${HOME}b\nJUST_A_NAME\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config({"DUAN8_ENV_FILE": str(env_file)}, instance_path=tmp_path / "i")
    assert "line 2" in str(err.value)
    env_file.write_text("SECRET_KEY=a${HOME}b\n", encoding="utf-8")
    config = load_config({"DUAN8_ENV_FILE": str(env_file)}, instance_path=tmp_path / "i")
    assert config.secret_key == "a${HOME}b"
