"""The whole system on one machine: broker, collector, simulated sites, visitor traffic."""
