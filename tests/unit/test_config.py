"""Config: TOML plus environment overrides; every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.core.config import load_config
from ops.core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "posko.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_design_contract(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), {})
    assert (cfg.web.host, cfg.web.port) == ("127.0.0.1", 8080)
    assert cfg.database.url is None
    assert cfg.mqtt.url is None
    assert cfg.mqtt.embedded_port == 1883
    assert cfg.mqtt.host_port == ("127.0.0.1", 1883)
    assert cfg.hub.data_dir == Path("var")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nport = 8081\n[mqtt]\nurl = "mqtt://broker.local:1884"\n')
    cfg = load_config(path, {"POSKO_WEB__PORT": "9000", "POSKO_MQTT__EMBEDDED_PORT": "11883"})
    assert cfg.web.port == 9000
    assert cfg.mqtt.embedded_port == 11883
    assert cfg.mqtt.host_port == ("broker.local", 1884)


def test_unrelated_environment_is_ignored(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), {"POSKO_PASSWORD": "x", "HOME": "/root"})
    assert cfg.web.port == 8080


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[web]\nport = 'eighty'\n", {}, "web.port"),
        ("[web]\nport = 70000\n", {}, "web.port"),
        ("[web]\nprot = 80\n", {}, "web.prot: unknown key"),
        ("[webb]\nport = 80\n", {}, "webb: unknown key"),
        ("", {"POSKO_WEB__PORT": "abc"}, "POSKO_WEB__PORT"),
        ("", {"POSKO_NOPE__X": "1"}, "POSKO_NOPE__X"),
        ("", {"POSKO_HUB__LOG_LEVEL": "LOUD"}, "hub.log_level"),
        ("[mqtt]\nurl = 'http://x'\n", {}, "mqtt.url"),
        ("[database]\nurl = 'mysql://x/y'\n", {}, "database.url"),
        ("[hub]\ntimezone = 'Asia/Atlantis'\n", {}, "hub.timezone"),
        ("[hub]\ntimezone = '../etc/passwd'\n", {}, "hub.timezone"),
        ("[map]\nprovinces_file = '/no/such/provinces.geojson'\n", {}, "map.provinces_file"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env)
    assert names in str(info.value)


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="POSKO_DATABASE__PASSWORD"):
        load_config(write(tmp_path, "[database]\npassword = 'hunter2'\n"), {})


def test_password_in_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[database]\nurl = 'postgresql://u:s3cret@h/db'\n"), {})
    assert "database.url" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_secrets_from_environment_are_accepted_and_hidden(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), {"POSKO_DATABASE__PASSWORD": "s3cret"})
    assert cfg.database.password is not None
    assert cfg.database.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)


def test_bad_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[web\n"), {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", {})


@pytest.mark.parametrize("variable", ["POSKO_WEB_PORT", "POSKO_PORT", "POSKO_"])
def test_posko_variable_without_section_separator_is_an_error(
    tmp_path: Path, variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, ""), {variable: "9000"})
    assert variable in str(info.value)
    assert "POSKO_<SECTION>__<KEY>" in str(info.value)


def test_known_non_config_posko_variables_are_allowed(tmp_path: Path) -> None:
    env = {
        "POSKO_PASSWORD": "x",
        "POSKO_UPDATE_SCREENSHOTS": "1",
        "POSKO_TEST_EMBEDDED": "1",
        "POSKO_TEST_PG_DIR": str(tmp_path / "pg"),
        "POSKO_WEB__PORT": "9000",
    }
    assert load_config(write(tmp_path, ""), env).web.port == 9000


def test_the_readme_example_is_a_valid_configuration(tmp_path: Path) -> None:
    """A newcomer copies the README's posko.toml: it must load as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_config(write(tmp_path, example), {})
    assert config.hub.id == "cc112-kota"
    assert config.mqtt.prefix == "posko"
    assert set(config.shifts.starts) == {"pagi", "siang", "malam"}
