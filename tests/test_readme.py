from i2v.core.settings import markdown_table
from tests.conftest import ROOT


def test_readme_parameter_table_matches_the_settings_table():
    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_names_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash start_app.sh" in readme and "bash tests/run.sh" in readme
    assert "bash tests/run.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_environment_table_matches_the_env_table():
    from i2v.core.env import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_variable_the_code_reads_is_in_the_table():
    import re

    from i2v.core.env import ENV_BY_NAME

    names = set()
    for path in list((ROOT / "i2v").rglob("*.py")) + [ROOT / "start_app.sh", ROOT / "restart.sh",
                                                      *(ROOT / "scripts").glob("*.sh")]:
        names |= set(re.findall(r"\bI2V_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    assert names - set(ENV_BY_NAME) == set()


def test_readme_families_table_is_the_generated_one():
    """The families table (predicted fits per card) is what `python bench/families.py` prints today."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- families-table")
    start = text.index("\n", start) + 1
    end = text.index("<!-- /families-table -->")
    printed = subprocess.run([sys.executable, str(ROOT / "bench" / "families.py")], capture_output=True,
                             text=True, check=True, timeout=300).stdout.strip()
    assert text[start:end].strip() == printed
