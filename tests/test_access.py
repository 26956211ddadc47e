"""Access (issue 9.6): admin APIs behind a key on HTTP and gRPC, model control off, gRPC TLS
from the SDK with certificates generated here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.conftest import ADMIN_KEY, Live
from tritonkit.clients import Client
from tritonkit.deployment import parse_deployment
from tritonkit.security import ADMIN_HEADER, GRPC_ADMIN_HEADER, GrpcTls
from tritonkit.serve import Ports, TritonServer

ADMIN = {ADMIN_HEADER: ADMIN_KEY}
RESTRICTED_HTTP = [
    ("GET", "/v2/models/stats"),
    ("POST", "/v2/repository/index"),
    ("GET", "/v2/logging"),
    ("GET", "/v2/trace/setting"),
    ("GET", "/v2/systemsharedmemory/status"),
]


@pytest.mark.parametrize(("method", "path"), RESTRICTED_HTTP)
def test_http_admin_apis_need_the_key(live: Live, method: str, path: str) -> None:
    url = live.http_url + path
    denied = httpx.request(method, url)
    assert denied.status_code == 403 and ADMIN_HEADER in denied.json()["error"]
    assert httpx.request(method, url, headers={ADMIN_HEADER: "wrong"}).status_code == 403
    assert httpx.request(method, url, headers=ADMIN).status_code == 200


def test_inference_metadata_and_health_stay_open(live: Live) -> None:
    for path in ("/v2/health/ready", "/v2/models/athene-70b", "/v2/models/athene-70b/config"):
        assert httpx.get(live.http_url + path).status_code == 200
    r = httpx.post(f"{live.http_url}/v2/models/athene-70b/generate",
                   json={"text_input": "hi", "max_tokens": 2})
    assert r.status_code == 200


def test_grpc_admin_protocols_need_the_key(live: Live) -> None:
    client = grpcclient.InferenceServerClient(live.grpc_url)
    for call in (client.get_inference_statistics, client.get_model_repository_index,
                 client.get_log_settings, client.get_system_shared_memory_status):
        with pytest.raises(InferenceServerException, match=GRPC_ADMIN_HEADER):
            call()
        call(headers={GRPC_ADMIN_HEADER: ADMIN_KEY})
    assert client.is_model_ready("athene-70b")


def test_model_control_is_off_even_with_the_key(live: Live) -> None:
    r = httpx.post(f"{live.http_url}/v2/repository/models/athene-70b/unload", headers=ADMIN)
    assert r.status_code == 503 and "not allowed" in r.json()["error"]  # Triton's own code
    assert httpx.get(f"{live.http_url}/v2/models/athene-70b/ready").status_code == 200


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=tritonkit-test-ca", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d


def test_grpc_tls_from_the_sdk(certs: Path, tmp_path: Path) -> None:
    dep = parse_deployment({"model": "athene-70b", "limits": {"max_input_len": 512,
                                                              "max_seq_len": 1024}})
    tls = GrpcTls(certs / "server.pem", certs / "server.key")
    with TritonServer([dep], Ports.free(), repo_dir=tmp_path / "repo",
                      log_path=tmp_path / "triton.log", grpc_tls=tls) as server:
        url = f"localhost:{server.ports.grpc}"
        with Client(url, protocol="grpc", ssl=str(certs / "ca.pem")) as client:
            res = client.chat([{"role": "user", "content": "hello over TLS"}], model="athene-70b",
                              max_tokens=5)
            assert res.usage.completion_tokens == 5 and res.finish_reason == "length"
        plain = grpcclient.InferenceServerClient(url)
        with pytest.raises(InferenceServerException):
            plain.is_server_ready(client_timeout=5)
