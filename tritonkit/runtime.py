"""The tritonserver runtime: obtain Triton 2.51 from the nvidia-pytriton wheel and run it here.

No GPU and no Docker are needed: the wheel carries `tritonserver`, the Python backend, one
Python-backend stub per interpreter version and every shared library they need
(shared/reference/triton-on-cpu.md). `install` unpacks just those files into a tools folder;
:func:`server_env` builds the environment that makes Python models run under this project's
virtualenv (its `bin/` first on PATH, its interpreter's libpython first on LD_LIBRARY_PATH).

    python -m tritonkit.runtime install --dest .tools/triton
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PYTRITON_VERSION = "0.7.0"
PYTRITON_WHEEL = f"nvidia_pytriton-{PYTRITON_VERSION}-py3-none-manylinux_2_35_x86_64.whl"
PYTRITON_SHA256 = "21f063ff93bb426d0c06b7a55e7eb9efcfe62c0dddd9a908e9877e18710128df"
TRITON_VERSION = "2.51.0"

_SERVER_PREFIX = "pytriton/tritonserver/"
_LIBS_PREFIX = "nvidia_pytriton.libs/"


class RuntimeNotInstalled(RuntimeError):
    """tritonserver is not where tritonkit looks for it."""


def project_root() -> Path:
    """The source checkout holding this package (tritonkit/ lives at its top level)."""
    return Path(__file__).resolve().parent.parent


def tools_dir() -> Path:
    """Project-local tools folder (`TRITONKIT_TOOLS` overrides `<repo>/.tools`)."""
    return Path(os.environ.get("TRITONKIT_TOOLS") or project_root() / ".tools")


def default_triton_home() -> Path:
    return Path(os.environ.get("TRITONKIT_TRITON_HOME") or tools_dir() / "triton")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (pinned downloads are checked with it)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(cache: Path) -> Path:
    wheel = cache / PYTRITON_WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_35_x86_64",
                "-d",
                str(cache),
                f"nvidia-pytriton=={PYTRITON_VERSION}",
            ],
            check=True,
        )
    digest = sha256_file(wheel)
    if digest != PYTRITON_SHA256:
        wheel.unlink()
        raise RuntimeError(
            f"{PYTRITON_WHEEL}: sha256 {digest} does not match the pinned {PYTRITON_SHA256}"
        )
    return wheel


def install(dest: Path) -> Path:
    """Unpack tritonserver, its backends and libraries from the pinned wheel into `dest`."""
    wheel = _download_wheel(dest.parent / "wheels")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staging = Path(tmp) / "triton"
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = info.filename
                if name.startswith(_SERVER_PREFIX):
                    rel = name[len(_SERVER_PREFIX) :]
                elif name.startswith(_LIBS_PREFIX):
                    rel = "lib/" + name[len(_LIBS_PREFIX) :]
                else:
                    continue
                if not rel or name.endswith("/"):
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
                mode = (info.external_attr >> 16) & 0o777
                target.chmod(mode or 0o644)
        (staging / "bin" / "tritonserver").chmod(0o755)
        for stub in staging.glob("python_backend_stubs/*/triton_python_backend_stub"):
            stub.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return dest


@dataclass(frozen=True)
class TritonRuntime:
    """A usable tritonserver installation bound to one Python interpreter (the models')."""

    home: Path
    python: Path

    @classmethod
    def locate(cls, home: Path | None = None, python: str | None = None) -> TritonRuntime:
        home = home or default_triton_home()
        if not (home / "bin" / "tritonserver").exists():
            raise RuntimeNotInstalled(
                f"tritonserver not found under {home}; run `make setup` "
                "(or `python -m tritonkit.runtime install --dest .tools/triton`)"
            )
        return cls(home=home, python=Path(python or sys.executable))

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "tritonserver"

    def _ask_python(self, expr: str) -> str:
        """Evaluate `expr` (with sys and sysconfig imported) in the models' interpreter."""
        if Path(self.python) == Path(sys.executable):
            return str(eval(expr, {"sys": sys, "sysconfig": sysconfig}))
        out = subprocess.run(
            [str(self.python), "-c", f"import sys, sysconfig; print({expr})"],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _python_version(self) -> str:
        return self._ask_python("'%d.%d' % sys.version_info[:2]")

    def _libdir(self) -> str:
        return self._ask_python("sysconfig.get_config_var('LIBDIR')")

    def backend_dir(self) -> Path:
        """The backends folder, with the stub matching the models' interpreter put in place.

        A full Triton install (the NGC image: TRITONKIT_TRITON_HOME=/opt/tritonserver) ships its
        own stub and no `python_backend_stubs/`; its backends folder is used as it is."""
        if not (self.home / "python_backend_stubs").is_dir():
            return self.home / "backends"
        version = self._python_version()
        stub = self.home / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.exists():
            raise RuntimeNotInstalled(f"no Python-backend stub for Python {version} in {self.home}")
        target = self.home / "backends" / "python" / "triton_python_backend_stub"
        if not target.exists() or sha256_file(target) != sha256_file(stub):
            shutil.copy2(stub, target)
            target.chmod(0o755)
        return self.home / "backends"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for tritonserver: the models' venv first on PATH, its libpython first."""
        env = dict(os.environ if base is None else base)
        venv_bin = str(Path(self.python).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        libs = [self._libdir(), str(self.home / "lib")]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.runtime")
    sub = parser.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser(
        "install", help="unpack tritonserver from the pinned nvidia-pytriton wheel"
    )
    inst.add_argument("--dest", type=Path, default=default_triton_home())
    sub.add_parser("where", help="print the tritonserver binary in use")
    args = parser.parse_args(argv)
    if args.cmd == "install":
        home = install(args.dest.resolve())
        rt = TritonRuntime.locate(home)
        rt.backend_dir()
        print(f"tritonserver {TRITON_VERSION} installed in {home}")
    else:
        print(TritonRuntime.locate().binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
