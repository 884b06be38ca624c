"""The README documents every setting and the command it promises."""

from dataclasses import fields

from qa_bot.config import Settings, env_name
from qa_bot.telegram_bot.settings import BotSettings
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for cls in (Settings, BotSettings):
        for field in fields(cls):
            assert f"`{env_name(field.name, cls)}`" in README, f"{field.name} is not in README.md"
            assert field.metadata.get("help"), f"{field.name} has no help text"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    commands = [line.split("#")[0].strip() for line in README.split("```sh", 1)[1].split("```")[0]
                .strip().splitlines()]
    assert commands[0].startswith("./scripts/setup.sh")
    assert commands[1] == "./scripts/test.sh"
    assert "exec ./scripts/test.sh" in (REPO / ".ci" / "run").read_text()
