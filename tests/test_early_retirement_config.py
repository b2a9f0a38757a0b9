"""[policy.early_retirement] in the gateway configuration (docs/eligibility.md, "Special type of work and illness")."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.domain.retirement_age import Age, AgeDelay, EarlyRetirementAges
from tests.conftest import ROOT

SHIPPED = [ROOT / "config" / "gateway.toml", ROOT / "config" / "gateway.production.toml"]


def _config_with_policy(tmp_path: Path, table: str) -> Path:
    """The default configuration, relocated to tmp_path, with [policy.early_retirement] replaced by ``table``."""
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    start = text.index("[policy.early_retirement]")
    end = text.index("[dispatcher]")
    text = f"base_dir = {json.dumps(str(ROOT))}\n" + text[:start] + table + "\n" + text[end:]
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_configurations_state_the_documented_defaults_with_the_delay_off(path: Path) -> None:
    table = tomllib.loads(path.read_text(encoding="utf-8"))["policy"]["early_retirement"]
    assert EarlyRetirementAges.from_settings(table) == EarlyRetirementAges()


def test_default_configuration_loads_the_pre_reform_ages() -> None:
    assert load_config().early_retirement == EarlyRetirementAges()


def test_configured_ages_and_the_delay_reach_the_gateway_config(tmp_path: Path) -> None:
    path = _config_with_policy(tmp_path, """[policy.early_retirement]
special_work_type_male = { years = 55, months = 6 }
illness_female = 46
delayed = true
[policy.early_retirement.delay]
special_work_type_female = { step = 2, max_months = 60 }
""")
    ages = load_config(path).early_retirement
    assert ages == EarlyRetirementAges(
        special_work_type_male=Age(55, 6), illness_female=Age(46), delayed=True,
        delays={"special_work_type_female": AgeDelay(2, 60)},
    )


def test_a_missing_table_means_the_defaults(tmp_path: Path) -> None:
    assert load_config(_config_with_policy(tmp_path, "")).early_retirement == EarlyRetirementAges()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("[policy.early_retirement]\nillness_male = \"fifty\"\n", "illness_male"),
        ("[policy.early_retirement]\nspecial_work_type_men = 55\n", "special_work_type_men"),
        ("[policy.early_retirement]\ndelayed = 1\n", "delayed"),
        ("[policy.early_retirement.delay]\nillness_male = { step = 0, max_months = 3 }\n", "delay.illness_male"),
        ("early_retirement = 3\n", "must be a table"),  # a key of [policy], not a table
    ],
)
def test_a_bad_value_stops_the_gateway_with_a_config_error_naming_the_key(tmp_path: Path, table: str, key: str) -> None:
    path = _config_with_policy(tmp_path, table)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "[policy.early_retirement]" in message and key in message, message
