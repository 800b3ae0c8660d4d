import subprocess
import sys

import pytest

from advbook import chapters
from advbook.chapters import Parameter
from advbook.errors import ParameterError
from advbook.cli import main


@pytest.fixture
def primer():
    return chapters.get("primer")


def test_profile_defaults_are_valid(primer):
    for profile in primer.profiles:
        settings = primer.settings(profile)
        for p in primer.parameters:
            assert p.name in settings, (profile, p.name)
            p.check(settings[p.name])
        assert primer.experiments(settings)


@pytest.mark.parametrize("name,value,message", [
    ("eps", -0.1, "'eps' must be >= 0"),
    ("eps", "big", "'eps' must be float"),
    ("epochs", 2.5, "'epochs' must be int"),
    ("defenses", ["standard", "magic"], "'defenses' must be one of"),
    ("nonsense", 1, "no parameter 'nonsense'"),
])
def test_bad_settings_are_refused_with_the_parameter_named(primer, name, value, message):
    with pytest.raises(ParameterError, match=message):
        primer.settings("smoke", **{name: value})


def test_none_means_profile_value(primer):
    assert primer.settings("smoke", eps=None)["eps"] == primer.profiles["smoke"]["eps"]
    assert primer.settings("smoke", eps=0.05)["eps"] == 0.05


def test_command_line_values_are_parsed(primer):
    assert primer.parse_overrides([("eps", "0.05"), ("seeds", "1,2"), ("augment", "yes")]) == \
        {"eps": 0.05, "seeds": [1, 2], "augment": True}
    with pytest.raises(ParameterError, match="'augment'"):
        Parameter("augment", bool, "").parse("maybe")


@pytest.mark.parametrize("args", [["-p", "eps", "-0.1"], ["-p", "foo", "1"], ["-p", "epochs", "ten"],
                                  ["--profile", "huge"]])
def test_run_refuses_bad_parameters_and_leaves_the_chapter_untouched(tmp_path, args, capsys):
    output = tmp_path / "primer.ipynb"
    output.write_text("previous chapter")
    assert exit_code(["run", "primer", "--output", str(output), *args]) == 2
    assert "error" in capsys.readouterr().err
    assert output.read_text() == "previous chapter"
    assert list(tmp_path.iterdir()) == [output]


def test_unknown_chapter_is_an_error(capsys):
    assert main(["run", "no-such-chapter"]) == 2
    assert "unknown chapter" in capsys.readouterr().err


def test_module_entry_point_lists_chapters():
    out = subprocess.run([sys.executable, "-m", "advbook", "list"], capture_output=True, text=True, check=True).stdout
    assert "primer" in out and "eps" in out


def test_sweep_validates_every_point_before_running(tmp_path, capsys):
    code = main(["sweep", "primer", "--grid", "eps=0.1,-1", "--output-dir", str(tmp_path / "sweep")])
    assert code == 2 and "'eps' must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


def exit_code(argv):
    """main's return value, or argparse's exit status for a bad command line."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
