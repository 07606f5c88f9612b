"""The whole system on one machine: broker, collector, simulated sites, visitor traffic.

``cccd-demo`` (:mod:`demo.cli`), run by ``bash deploy/start.sh``. It sets up the collector's
tables and starts every part, so it lives outside the card simulator (``firmware_sim``), which
never imports the collector or the agent (docs/design.md §2).
"""
