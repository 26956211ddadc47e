"""Make gRPC cooperate with gevent. Import this before anything imports grpc or tritonclient.

Locust monkey-patches on import; gRPC's C core still blocks the whole process unless
`grpc.experimental.gevent.init_gevent()` runs first (shared/reference/triton-on-cpu.md).
"""

from gevent import monkey

monkey.patch_all()

import grpc.experimental.gevent as grpc_gevent  # noqa: E402

grpc_gevent.init_gevent()
