"""The decisions of i2v.control without real processes: what a PID file means (missing, garbage, stale,
foreign, frozen), who holds a port, which options a restart keeps, the address to probe."""
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from i2v import control

ROOT = Path("/srv/i2v")
PID_FILE = ROOT / "logs" / "app.pid"


class FakeProc:
    def __init__(self, pid, cmdline, cwd, status=psutil.STATUS_SLEEPING, running=True):
        self.pid, self._cmdline, self._cwd, self._status, self._running = pid, cmdline, cwd, status, running

    def cmdline(self):
        return self._cmdline

    def cwd(self):
        return self._cwd

    def name(self):
        return Path(self._cmdline[0]).name if self._cmdline else "?"

    def is_running(self):
        return self._running

    def status(self):
        return self._status


def verdict(text, *procs):
    table = {p.pid: p for p in procs}
    return control.pid_file_verdict(text, PID_FILE, ROOT, table.get)


APP = FakeProc(4242, ["/srv/i2v/.venv/bin/python", "main.py", "serve", "--port", "7861"], str(ROOT))


def test_no_pid_file_means_nothing_runs_and_nothing_to_say():
    assert verdict(None) == control.PidFileVerdict(None, None)


def test_a_pid_file_without_a_pid_is_reported():
    result = verdict("hello\n")
    assert result.pid is None and "holds no PID" in result.message and "hello" in result.message


def test_a_stale_pid_is_reported_never_signalled():
    result = verdict("4242\n")                          # no such process
    assert result.pid is None and result.message.startswith("stale PID file: pid 4242 is not running")
    zombie = FakeProc(4242, APP.cmdline(), str(ROOT), status=psutil.STATUS_ZOMBIE)
    assert verdict("4242", zombie).pid is None


def test_a_foreign_pid_is_named_and_left_alone():
    sleeper = FakeProc(4242, ["sleep", "300"], "/tmp")
    result = verdict("4242", sleeper)
    assert result.pid is None and "pid 4242 (sleep 300)" in result.message and "not this app" in result.message
    elsewhere = FakeProc(4242, ["python", "main.py", "serve"], "/home/someone/other-checkout")
    assert verdict("4242", elsewhere).pid is None       # another copy of the app is not ours either


def test_this_app_is_found_even_when_frozen():
    assert verdict(" 4242 \n", APP) == control.PidFileVerdict(4242, None)
    frozen = FakeProc(4242, APP.cmdline(), str(ROOT), status=psutil.STATUS_STOPPED)
    assert verdict("4242", frozen).pid == 4242          # stop resumes it (SIGCONT) before SIGTERM


def test_is_this_app_needs_main_py_and_the_project_folder():
    assert control.is_this_app(["python", "/srv/i2v/main.py"], "/srv/i2v", ROOT)
    assert not control.is_this_app(["python", "not_main.py"], "/srv/i2v", ROOT)
    assert not control.is_this_app(["python", "main.py"], None, ROOT)


Addr = namedtuple("Addr", "ip port")
Conn = namedtuple("Conn", "status laddr pid")


def test_port_holders_names_listeners_only():
    rows = [Conn(psutil.CONN_LISTEN, Addr("127.0.0.1", 7860), 11), Conn(psutil.CONN_ESTABLISHED, Addr("1.2.3.4", 7860), 12),
            Conn(psutil.CONN_LISTEN, Addr("::", 7860), None), Conn(psutil.CONN_LISTEN, Addr("0.0.0.0", 22), 13)]
    assert control.port_holders(7860, rows) == (True, [11])
    assert control.port_holders(7861, rows) == (False, [])
    hidden = [Conn(psutil.CONN_LISTEN, Addr("0.0.0.0", 7860), None)]     # another user's process
    assert control.port_holders(7860, hidden) == (True, [])


def test_restart_keeps_only_the_options_not_chosen():
    _, options = control.parse_options(["restart", "--model", "tiny"], environ={}, root=ROOT)
    kept = control.inherit(options, ["python", "main.py", "serve", "--host", "0.0.0.0", "--port=7999",
                                     "--model", "auto"])
    assert (options.host, options.port, options.model) == ("0.0.0.0", 7999, "tiny")
    assert kept == ["--host 0.0.0.0", "--port 7999"]
    _, options = control.parse_options(["restart"], environ={"I2V_PORT": "7000"}, root=ROOT)
    control.inherit(options, ["python", "main.py", "--port", "7999"])
    assert options.port == 7000                          # chosen through the environment


def test_options_defaults_paths_and_port_checks():
    command, options = control.parse_options([], environ={"I2V_LOGS": "mylogs"}, root=ROOT)
    assert command == "start" and options.port == 7860 and options.host == "127.0.0.1"
    assert options.pid_file == ROOT / "mylogs" / "app.pid" and options.outputs == ROOT / "outputs"
    with pytest.raises(control.ControlError, match="port must be"):
        control.parse_options(["--port", "http"], environ={}, root=ROOT)
    with pytest.raises(control.ControlError, match="port must be"):
        control.parse_options([], environ={"I2V_PORT": "70000"}, root=ROOT)


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:8000/"), ("0.0.0.0", "http://127.0.0.1:8000/"),
                                       ("::", "http://[::1]:8000/"), ("fe80::1", "http://[fe80::1]:8000/")])
def test_the_address_to_probe(host, url):
    _, options = control.parse_options(["--host", host, "--port", "8000"], environ={}, root=ROOT)
    assert options.url() == url


def test_the_app_command_writes_its_own_pid_file():
    _, options = control.parse_options(["--model", "tiny"], environ={}, root=ROOT)
    command = control.app_command(options, python="py")
    assert command[:3] == ["py", "main.py", "serve"] and command[command.index("--pid-file") + 1] == str(
        options.pid_file) and command[-2:] == ["--model", "tiny"]


@pytest.mark.parametrize("command, code", [("start", 0), ("restart", 1), ("stop", 1)])
def test_a_systemd_managed_app_is_left_to_systemctl(monkeypatch, capsys, command, code):
    from i2v import systemctl

    monkeypatch.setattr(systemctl, "managing_scope", lambda root: True)
    monkeypatch.setattr(control, "start", lambda options: pytest.fail("started beside systemd"))
    monkeypatch.setattr(control, "stop", lambda *a, **k: pytest.fail("stopped behind systemd's back"))
    assert control.main([command]) == code
    out = capsys.readouterr()
    assert "systemctl --user restart i2v" in out.out + out.err


def test_without_systemd_the_scripts_act_as_before(monkeypatch):
    from i2v import systemctl

    monkeypatch.setattr(systemctl, "systemctl", lambda args, user_unit: None)    # no systemctl here
    assert control.systemd_notice(control.parse_options([], environ={})[1]) is None
