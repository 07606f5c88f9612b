"""Pure CCCD domain code (no I/O): ID number, TD1 MRZ, QR payloads, key material, DG13."""
