"""Bridges that put simulated devices behind the real host stacks (docs/design.md §2.3).

``vpcd``: the simulated chip as a virtual ICC of pcscd's vpcd driver (PC/SC through pyscard).
Other bridges: nfcpy's UDP pseudo-device, pseudo-terminal scanners, camera frames.
"""
