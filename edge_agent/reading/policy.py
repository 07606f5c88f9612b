"""What a site asks a chip read to do (docs/design.md §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edge_agent.icao.files import DEFAULT_MAX_CHUNK


class CloneCheck(Enum):
    """Which clone checks to run (ICAO 9303-11 §6.1 AA, §6.2 CA)."""

    NONE = "none"
    CHIP_AUTHENTICATION = "ca"
    """CA when DG14 offers it, otherwise AA when DG15 is present (the default)."""
    BOTH = "both"
    """CA and AA, each when the chip offers it."""


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """Files to read and checks to run; defaults fit a heritage gate."""

    read_dg2: bool = False
    read_dg13: bool = True
    clone_check: CloneCheck = CloneCheck.CHIP_AUTHENTICATION
    require_csca_chain: bool = False
    """When True, a read that is only ``chip-signed`` counts as a failure."""
    max_chunk: int = DEFAULT_MAX_CHUNK
    max_retries: int = 3
    deadline_s: float = 10.0
    reconnect_timeout_s: float = 2.0
    use_short_ef: bool = True
    """Name files by short EF identifier in the first READ BINARY (saves one SELECT each)."""

    def data_groups(self) -> tuple[int, ...]:
        """Data groups to read, in order: DG14 first (CA re-keys the channel), then the rest."""
        groups = [14, 1]
        if self.read_dg13:
            groups.append(13)
        if self.read_dg2:
            groups.append(2)
        groups.append(15)
        return tuple(groups)
