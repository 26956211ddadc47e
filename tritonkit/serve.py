"""Start, supervise and stop tritonserver for rendered deployments.

:class:`TritonServer` renders the deployments into a fresh repository, launches tritonserver (one
process, or one per rank under `mpirun` for TP x PP > 1 TensorRT-LLM engines), waits until every
model is ready, and stops it cleanly: SIGTERM, then Triton drains in-flight requests for up to
`exit_timeout_s` before exiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonkit.deployment import Deployment
from tritonkit.model_repository.render import render_repository
from tritonkit.runtime import TritonRuntime
from tritonkit.security import GrpcTls, server_access_args
from tritonkit.security import admin_key as _admin_key
from tritonkit.triton_models.common import PYTHON_BACKEND_THREAD_POOL

__all__ = ["Ports", "ServerError", "TritonServer", "free_port"]


class ServerError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started tritonserver dies (Linux), so a
    killed test run or CLI never leaves a server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002

    @classmethod
    def free(cls) -> Ports:
        """Three distinct free ports (the sockets stay bound until all three are chosen, so the
        OS cannot hand out the same port twice)."""
        socks = []
        try:
            for _ in range(3):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                socks.append(sock)
            http, grpc, metrics = (sock.getsockname()[1] for sock in socks)
        finally:
            for sock in socks:
                sock.close()
        return cls(http, grpc, metrics)


@dataclass
class TritonServer:
    deployments: Sequence[Deployment]
    ports: Ports = field(default_factory=Ports)
    repo_dir: Path | None = None
    log_path: Path | None = None
    exit_timeout_s: int = 10
    extra_args: Sequence[str] = ()
    env: dict[str, str] | None = None
    grpc_tls: GrpcTls | None = None
    admin_key: str = field(default_factory=_admin_key, repr=False)
    process: subprocess.Popen | None = None
    _stubs: dict[int, str] = field(default_factory=dict, repr=False)

    # ---- lifecycle ---------------------------------------------------------------------------
    def command(self, runtime: TritonRuntime) -> list[str]:
        args = [
            str(runtime.binary),
            f"--model-repository={self.repo_dir}",
            f"--backend-directory={runtime.backend_dir()}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--disable-auto-complete-config",
            "--backend-config=python,shm-default-byte-size=16777216",
            f"--backend-config=python,thread-pool-size={PYTHON_BACKEND_THREAD_POOL}",
            "--log-info=true",
            *server_access_args(self.admin_key, self.grpc_tls),
            *self.extra_args,
        ]
        trt = [d for d in self.deployments if d.engine == "tensorrtllm"]
        world = max((d.world_size for d in trt), default=1)
        if world > 1:
            if len(trt) != 1:
                raise ServerError("serve one multi-GPU TensorRT-LLM deployment per server")
            from tritonkit.build.launch import mpirun_command  # leader mode, one rank per GPU

            return mpirun_command(world, args, args,
                                  trtllm_model_name=trt[0].step_name("tensorrt_llm"))
        return args

    def start(self) -> TritonServer:
        if self.repo_dir is None:
            self.repo_dir = Path(tempfile.mkdtemp(prefix="tritonkit-repo-"))
        render_repository(self.deployments, self.repo_dir)
        runtime = TritonRuntime.locate()
        if self.log_path is None:
            self.log_path = Path(self.repo_dir).with_suffix(".log")
        # a restart (`restart`, `serve_forever`) appends: it must not erase why the last one died
        mode = "wb" if self.process is None else "ab"
        self._log = open(self.log_path, mode)  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            self.command(runtime),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=runtime.env(self.env),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        url = f"http://127.0.0.1:{self.ports.http}/v2/health/ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"tritonserver exited with {self.process.returncode} while loading:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        self._stubs = self.python_stubs()
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise ServerError(f"tritonserver not ready after {timeout_s:.0f}s:\n" + self.log_tail())

    # ---- Python-backend stubs: Triton 2.51 never restarts one that died -------------------------
    def python_stubs(self) -> dict[int, str]:
        """pid -> model folder of every live `triton_python_backend_stub` child (Linux /proc)."""
        stubs: dict[int, str] = {}
        if self.process is None or self.repo_dir is None:
            return stubs
        repo = f"{Path(self.repo_dir)}/"
        for proc in Path("/proc").glob("[0-9]*"):
            if not self._is_child(int(proc.name)):
                continue
            try:  # cmdline only for our children: reading it waits on the target's memory map
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(cmd) < 2:
                continue
            model_py = cmd[1].decode(errors="replace")
            if cmd[0].endswith(b"triton_python_backend_stub") and model_py.startswith(repo):
                stubs[int(proc.name)] = model_py[len(repo):].split("/", 1)[0]
        return stubs

    def lost_stubs(self) -> list[str]:
        """Models whose stub (seen when the server became ready) is gone. Triton still reports
        them ready, but every request fails with "Stub process ... is not healthy". Reads only
        each stub's /proc stat: a dying process's cmdline can block the reader."""
        return sorted({m for pid, m in self._stubs.items() if not self._is_child(pid)})

    def _is_child(self, pid: int) -> bool:
        """`pid` is a live (not zombie) child of our tritonserver."""
        try:
            state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            return False
        return self.process is not None and int(ppid) == self.process.pid and state not in "ZX"

    def restart(self, timeout_s: float = 180.0) -> None:
        """Stop (draining what still runs) and start again on the same ports."""
        self.stop()
        self.start()
        self.wait_ready(timeout_s)

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not Path(self.log_path).exists():
            return "(no log)"
        text = Path(self.log_path).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float | None = None) -> int:
        """SIGTERM; Triton drains in-flight requests, then exits. Returns its exit code."""
        p = self.process
        if p is None:
            return 0
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout_s or self.exit_timeout_s + 20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # Python-backend stubs stuck on a dead parent stay behind in tritonserver's process group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._log.close()
        return p.returncode

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what to tell the user ---------------------------------------------------------------
    def banner(self) -> str:
        names = ", ".join(d.served_name for d in self.deployments)
        first = self.deployments[0].served_name
        ref = any(d.engine == "reference" for d in self.deployments)
        note = (
            "\nNOTE: engine=reference: the CPU reference engine answers with seeded random weights "
            "(gibberish text) over the model's real tokenizer and chat template.\n"
            if ref
            else ""
        )
        return (
            f"tritonserver ready: {names}\n"
            f"  HTTP    http://localhost:{self.ports.http}\n"
            f"  gRPC    localhost:{self.ports.grpc}\n"
            f"  metrics http://localhost:{self.ports.metrics}/metrics\n"
            f"{note}\nTry:\n"
            f"  curl -sN -X POST localhost:{self.ports.http}/v2/models/{first}/generate_stream \\\n"
            f'    -d \'{{"messages": "[{{\\"role\\":\\"user\\",\\"content\\":\\"Hello!\\"}}]", '
            f'"max_tokens": 32, "stream": true}}\'\n'
            f"Admin APIs (repository, shared memory, logging, trace, statistics) need the header "
            f"tritonkit-admin-key (key from $TRITONKIT_ADMIN_KEY; unset = closed).\n"
            f"Stop with Ctrl-C (in-flight requests drain for up to {self.exit_timeout_s}s).\n"
        )


def serve_forever(server: TritonServer, echo=print) -> int:
    """Run until Ctrl-C/SIGTERM or until tritonserver dies; return an exit code. A Python-backend
    stub that dies (Triton does not restart it) makes serve restart tritonserver."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        server.wait_ready()
        echo(server.banner())
        while not stopping:
            if server.process is not None and server.process.poll() is not None:
                echo("tritonserver exited unexpectedly:\n" + server.log_tail())
                return server.process.returncode or 1
            lost = server.lost_stubs()
            if lost:  # Triton 2.51 keeps such models "ready" but fails every request to them
                echo(f"Python stub died for {', '.join(lost)}: restarting tritonserver ...")
                server.restart()
                echo("tritonserver ready again")
            time.sleep(0.5)
        echo("stopping: draining in-flight requests ...")
        code = server.stop()
        echo(f"tritonserver exited with {code}")
        return 0 if code in (0, -signal.SIGTERM) else code
    except (ServerError, ValueError) as exc:  # ValueError: render refused (e.g. engine mismatch)
        server.stop()
        echo(str(exc))
        return 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `tritonkit serve`")
