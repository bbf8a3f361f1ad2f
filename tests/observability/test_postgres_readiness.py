"""/readyz against PostgreSQL (the deployment's database): two replicas ready, then one behind head.

Runs when ``HCC_TEST_POSTGRES_URL`` names a server (``tools/start_postgres.sh DIR`` prints one); each
test gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import pytest

from service.db import Database
from tests.db.conftest import PG_ENV, fresh_postgres_database, postgres_url
from tests.observability.conftest import observed_app
from tests.observability.test_metrics import sample

pytestmark = pytest.mark.skipif(postgres_url() is None, reason=f"PostgreSQL not configured: set {PG_ENV}")


def test_two_replicas_on_one_postgresql_are_ready_and_a_database_behind_head_is_not(settings):
    from fastapi.testclient import TestClient

    with fresh_postgres_database(postgres_url()) as url, fresh_postgres_database(postgres_url()) as empty_url:
        replica_settings = settings.model_copy(update={"database_url": url})
        first, second = observed_app(replica_settings), observed_app(replica_settings)
        with TestClient(first) as a, TestClient(second) as b:  # each migrates at start-up: the second finds head
            for client in (a, b):
                r = client.get("/readyz")
                assert r.status_code == 200, r.text
                assert r.json()["checks"] == {"benchmark_tables": "ok", "database": "ok", "fhir_pool": "ok", "migrations": "ok"}
            assert first.state.hcc.db.backend == "postgresql"

            behind = Database.from_url(empty_url)  # reachable, never migrated
            a.portal.call(behind.start)
            original, first.state.hcc.db = first.state.hcc.db, behind
            try:
                r = a.get("/readyz")
            finally:
                first.state.hcc.db = original
                a.portal.call(behind.stop)
            assert r.status_code == 503
            assert r.json()["checks"] == {"benchmark_tables": "ok", "database": "ok", "fhir_pool": "ok", "migrations": "failed"}
            assert sample(a.get("/metrics").text, "hcc_cds_readiness_check_failures_total", check="migrations") == 1
            assert b.get("/readyz").status_code == 200  # the other replica is unaffected
