"""Reading a trust-store folder from disk into :class:`edge_agent.icao.trust.TrustStore`.

The trust store itself is pure protocol code (docs/design.md §2.1: ``icao/`` does no I/O); this
module is the one place that walks the folder: every file under it, recursively and sorted by
path, is read and handed to :meth:`TrustStore.from_files`. Files that cannot be read are
reported as skipped, like malformed ones.
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.icao.trust import SkippedEntry, TrustError, TrustStore


def load_trust_folder(path: str | Path, *, require_signer_chain: bool = True) -> TrustStore:
    """Load every certificate (``*.pem *.crt *.cer *.der``) and ICAO master list (``*.ml``)
    under ``path``; :attr:`TrustStore.report` lists what was loaded and what was skipped."""
    folder = Path(path)
    if not folder.is_dir():
        raise TrustError(f"trust store folder {folder} does not exist")
    readable: list[tuple[str, bytes]] = []
    unreadable: list[SkippedEntry] = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            readable.append((str(file), file.read_bytes()))
        except OSError as exc:
            unreadable.append(SkippedEntry(str(file), f"unreadable: {exc}"))
    store = TrustStore.from_files(readable, require_signer_chain=require_signer_chain)
    store.report.skipped.extend(unreadable)
    return store
