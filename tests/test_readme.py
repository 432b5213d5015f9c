from i2v.core.settings import markdown_table
from tests.conftest import ROOT


def test_readme_parameter_table_matches_the_settings_table():
    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_names_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash start_app.sh" in readme and "bash tests/run.sh" in readme
    assert "bash tests/run.sh" in (ROOT / ".ci" / "run").read_text()
