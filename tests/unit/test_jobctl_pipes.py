"""jobctl in a pipeline: a reader that goes away (``jobctl list | head``) ends it quietly,
with the status a shell gives a command SIGPIPE killed, and nothing else does."""

from __future__ import annotations

import signal

import pytest

from jobctl import cli


def test_a_reader_that_goes_away_ends_jobctl_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def write_to_a_closed_pipe(argv: object) -> int:
        raise BrokenPipeError()

    monkeypatch.setattr(cli, "_main", write_to_a_closed_pipe)
    monkeypatch.setattr(cli, "_silence_stdout", lambda: None)  # keep pytest's own stdout
    assert cli.main(["types"]) == 128 + signal.SIGPIPE
    assert capsys.readouterr().err == ""


def test_sigpipe_is_left_ignored_so_a_closed_socket_is_an_error_not_death() -> None:
    # Python starts with SIGPIPE ignored; jobctl must not restore the default action,
    # which kills the process for a write to any closed socket or pipe (gRPC's own, as a
    # channel shuts down), not just stdout.
    cli.build_parser()
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN
