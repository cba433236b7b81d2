"""``frontdesk chat airline`` driven like a person would: through a pipe and a terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from frontdesk import AgentRuntime
from frontdesk.models.rules import RULES_LABEL

from conftest import PYTHON, WAIT_SECONDS, Children, child_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROMPT = "Enter your message: "
STALE = "** Stale conversation. Reloading..."
ASK_CONFIRMATION = "Seat Booking Agent: I can change your seat. What is your confirmation number?"
WIFI = "FAQ Agent: We have free wifi on the plane, join Airline-Wifi"
READ_SYSCALLS = {"0", "63"}  # read(2) on x86-64 and on arm64


def chat_args(home: Path, *options: str, conversation_id: str = "c1") -> list[str]:
    return [
        PYTHON, "-m", "frontdesk", "--home", str(home), *options,
        "chat", "airline", "--conversation-id", conversation_id,
    ]  # fmt: skip


def chat_once(home: Path, *messages: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the chat with ``messages`` on stdin until end of input."""
    done = subprocess.run(
        chat_args(home), input="".join(f"{m}\n" for m in messages), env=child_env(**env),
        capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


class Session:
    """A running chat, read and written through file descriptors (a pipe pair or a pty)."""

    def __init__(self, pid: int, read_fd: int, write_fd: int) -> None:
        self.pid, self.read_fd, self.write_fd = pid, read_fd, write_fd
        self.output = ""
        self._pending = ""

    @classmethod
    def in_terminal(cls, children: Children, home: Path) -> Session:
        """The chat in a pseudo-terminal, as if typed at a keyboard."""
        env = child_env(PYTHONFAULTHANDLER="1")  # built before the fork: the child only execs
        pid, fd = pty.fork()
        if pid == 0:  # the child (a session leader): become the chat
            os.execve(PYTHON, chat_args(home), env)
        return cls(children.adopt(pid), fd, fd)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.read_fd, 65536).decode(errors="replace")
        except OSError:  # a pty's reader gets EIO once the child has exited
            chunk = ""
        chunk = chunk.replace("\r\n", "\n")
        self.output += chunk
        self._pending += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = WAIT_SECONDS) -> str:
        """Everything printed up to and including ``text`` since the last expectation."""
        deadline = time.monotonic() + timeout
        while text not in self._pending:
            assert time.monotonic() < deadline, f"no {text!r} in {self.output!r}"
            assert self._read(0.2), f"the chat ended before {text!r}: {self.output!r}"
        seen, _, self._pending = self._pending.partition(text)
        return seen + text

    def wait_until_reading(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until the chat is blocked reading stdin (Linux), so a signal sent now is not
        lost in the instant between printing the prompt and starting the read."""
        syscall = Path(f"/proc/{self.pid}/syscall")
        deadline = time.monotonic() + timeout
        while syscall.exists():
            fields = syscall.read_text().split()
            if len(fields) > 1 and fields[0] in READ_SYSCALLS and fields[1] == "0x0":
                return
            assert time.monotonic() < deadline, self.output
            time.sleep(0.01)

    def type(self, text: str) -> None:
        os.write(self.write_fd, text.encode())

    def finish(self, timeout: float = WAIT_SECONDS) -> int:
        """Read the rest of the output; the exit code."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):
                    pass
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.output}\n{self._stuck()}")
            self._read(0.05)

    def _stuck(self) -> str:
        """What the child that would not end was doing: each thread's state and signal mask,
        then every Python thread's stack (faulthandler prints them on SIGABRT)."""
        threads = []
        for task in sorted(Path(f"/proc/{self.pid}/task").iterdir()):
            status = (task / "status").read_text().splitlines()
            wanted = [line for line in status if line.startswith(("Name", "State", "Sig"))]
            wchan = (task / "wchan").read_text() if (task / "wchan").exists() else "?"
            threads.append(f"{task.name} wchan={wchan} " + " ".join(wanted))
        os.kill(self.pid, signal.SIGABRT)
        os.waitpid(self.pid, 0)
        while self._read(0.2):
            pass
        return "threads:\n" + "\n".join(threads)


def in_pipes(children: Children, home: Path) -> tuple[subprocess.Popen[bytes], Session]:
    proc = children.popen(
        chat_args(home), env=child_env(PYTHONFAULTHANDLER="1"), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    return proc, Session(proc.pid, proc.stdout.fileno(), proc.stdin.fileno())


def history(home: Path) -> list[str]:
    with AgentRuntime(home, model="rules", recover=False) as runtime:
        return runtime.conversation("c1").history()


def test_through_a_pipe_replies_are_printed_without_the_user_echo(home: Path) -> None:
    out = chat_once(home, "What's the baggage allowance?", "I'd like to change my seat").stdout

    assert out.count(PROMPT) == 3
    assert "User:" not in out
    assert "Handed off from Triage Agent to FAQ Agent\nFAQ Agent: Calling a tool\n" in out
    assert "FAQ Agent: You are allowed to bring one bag on the plane." in out
    assert "Handed off from Triage Agent to Seat Booking Agent\n" + ASK_CONFIRMATION in out
    assert RULES_LABEL in out


def test_bad_input_prints_the_error_and_the_chat_goes_on(home: Path) -> None:
    out = chat_once(home, "", "x" * 1001, "Is there wifi?").stdout

    assert "** Message not sent: the message is empty" in out
    assert "limit to 1000 characters" in out
    assert WIFI in out
    assert [line for line in history(home) if line.startswith("User:")] == ["User: Is there wifi?"]


def test_a_restarted_chat_prints_the_history_first(home: Path, children: Children) -> None:
    chat_once(home, "I'd like to change my seat", "LL0EZ6")
    earlier = history(home)

    terminal = Session.in_terminal(children, home)
    shown = terminal.expect(PROMPT)
    terminal.type("14C\n")
    reply = terminal.expect(PROMPT)
    terminal.type("\x04")  # Ctrl-D: end of input

    assert terminal.finish() == 0
    assert shown == "\n".join(earlier) + "\n" + PROMPT
    assert "Seat Booking Agent: Done! Your seat is now 14C (confirmation number LL0EZ6)." in reply
    assert "Traceback" not in terminal.output


def test_a_message_sent_elsewhere_makes_this_client_reload(home: Path, children: Children) -> None:
    chat_once(home, "I'd like to change my seat")
    proc, client = in_pipes(children, home)
    client.expect(PROMPT)

    chat_once(home, "Is there wifi?")  # another process answers meanwhile
    client.type("LL0EZ6\n")
    reloaded = client.expect(PROMPT)
    client.type("LL0EZ6\n")
    answered = client.expect(PROMPT)
    assert proc.stdin is not None
    proc.stdin.close()

    assert client.finish() == 0 and "Traceback" not in client.output
    missed = reloaded.partition(STALE + "\n")[2]
    assert missed.startswith("User: Is there wifi?\nHanded off from Seat Booking Agent to Triage")
    assert WIFI in missed
    assert "Seat Booking Agent: Thanks! I have your confirmation number LL0EZ6." in answered
    users = [line for line in history(home) if line.startswith("User:")]
    assert users == ["User: I'd like to change my seat", "User: Is there wifi?", "User: LL0EZ6"]


def test_ctrl_c_in_a_terminal_exits_cleanly(home: Path, children: Children) -> None:
    terminal = Session.in_terminal(children, home)
    terminal.expect(PROMPT)
    terminal.type("Is there wifi?\n")
    terminal.expect(PROMPT)
    terminal.wait_until_reading()
    terminal.type("\x03")  # Ctrl-C: the terminal sends SIGINT

    assert terminal.finish() == 0
    assert "Traceback" not in terminal.output and "Aborted" not in terminal.output
    assert WIFI in terminal.output


def test_sigint_through_a_pipe_exits_cleanly(home: Path, children: Children) -> None:
    proc, client = in_pipes(children, home)
    client.expect(PROMPT)
    client.wait_until_reading()
    proc.send_signal(signal.SIGINT)

    assert client.finish() == 0
    assert "Traceback" not in client.output and "Aborted" not in client.output


def test_only_the_main_thread_can_take_ctrl_c(home: Path, children: Children) -> None:
    """A process-directed SIGINT goes to any thread that does not block it; a main thread
    blocked reading input sees it only if every other thread blocks it."""
    proc, client = in_pipes(children, home)
    client.expect(PROMPT)
    client.type("Is there wifi?\n")
    client.expect(PROMPT)
    client.type("I'd like to change my seat\n")
    client.expect(PROMPT)
    client.wait_until_reading()

    unblocked = []
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        if int(task.name) == proc.pid:
            continue  # the main thread
        status = dict(
            line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line
        )
        if not int(status["SigBlk"].strip(), 16) & (1 << (signal.SIGINT - 1)):
            unblocked.append((task / "comm").read_text().strip())
    assert proc.stdin is not None
    proc.stdin.close()
    assert client.finish() == 0
    assert unblocked == []


@pytest.mark.parametrize(
    ("global_options", "command_options", "env"),
    [
        ([], ["--model", "rules"], {}),
        (["--model", "rules"], [], {}),
        ([], [], {"FRONTDESK_MODEL": "rules"}),
    ],
    ids=["command-option", "global-option", "env"],
)
def test_the_rules_model_can_be_chosen_even_with_a_key(
    home: Path, global_options: list[str], command_options: list[str], env: dict[str, str]
) -> None:
    done = subprocess.run(
        [*chat_args(home, *global_options), *command_options],
        input="Is there wifi?\n",
        # A key alone would choose OpenAI; no traces are exported for this offline test.
        env=child_env(OPENAI_API_KEY="sk-not-used", OPENAI_AGENTS_DISABLE_TRACING="1", **env),
        capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert WIFI in done.stdout
