"""Property-based fuzzing of every documented operation (schemathesis).

Generated requests, valid and invalid, authenticated as a rights holder: the
service must never answer 5xx, and every response must match the documented
status codes, content types and schemas. Schema-valid bodies may still be
refused (a certificate or package can be well-typed bytes yet not verify), so
schemathesis' "valid data is accepted" check is left out. Schemathesis' pytest plugin does not
load under this pytest, so the operations are driven directly through its
Hypothesis strategies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from v1_support import Service, service


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    with service(home, sealer=True, max_upload_bytes=1 << 16) as s:
        for i in range(3):
            s.deposit_hash(data=f"seed-{i}".encode())
        s.ledger.seal()
        yield s


def _operations(svc: Service) -> list[object]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", svc.client.app)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed(svc: Service) -> None:
    ops = _operations(svc)
    names = {f"{op.method.upper()} {op.path}" for op in ops}  # type: ignore[attr-defined]
    assert {"POST /v1/evidence", "GET /v1/evidence", "GET /checkpoint"} <= names
    failures: list[str] = []
    for op in ops:

        @given(case=op.as_strategy())  # type: ignore[attr-defined]
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            case.call_and_validate(
                headers=svc.auth("rights_holder"), excluded_checks=[positive_data_acceptance]
            )

        try:
            run()
        except Exception as e:  # collect every operation's failure, then report
            failures.append(f"{op.method.upper()} {op.path}: {e}")  # type: ignore[attr-defined]
    assert not failures, "\n\n".join(failures)
