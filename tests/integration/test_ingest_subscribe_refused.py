"""An ingest worker whose share group the broker does not grant fails to start with the broker's
reason, instead of waiting forever for messages that never come (docs/protocol.md §3: the
collector role may subscribe ``$share/ingest/…`` only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.ingest.worker import IngestError, IngestWorker
from central.settings import BrokerSettings, CentralSettings
from tests.integration.broker_fixtures import make_pki, running_broker
from tests.integration.pg_fixtures import migrated_engine


@pytest.mark.parametrize(("group", "granted"), [("bench", False), ("ingest", True)])
def test_refused_share_group_fails_start(tmp_path: Path, group: str, granted: bool) -> None:
    pki = make_pki(tmp_path / "pki")
    engine = migrated_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    ident = pki.collector("collector")
    with running_broker(tmp_path / "broker", pki) as broker:
        settings = CentralSettings(database_url=str(engine.url), broker=BrokerSettings(
            url=broker.url, ca=pki.ca, cert=ident.cert, key=ident.key, client_id="collector",
            group=group, session_expiry_s=60))
        worker = IngestWorker(settings, engine, periodic_s=3600)
        if granted:
            worker.start(timeout=10).stop()
            assert worker.refused is None
            return
        with pytest.raises(IngestError, match=r"refused the subscription to \$share/bench/"):
            worker.start(timeout=10)
        assert not worker.subscribed.is_set()
