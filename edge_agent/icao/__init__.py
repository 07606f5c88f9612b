"""Pure ICAO 9303 protocol code (no I/O): APDUs, BER-TLV, BAC, PACE, secure messaging, LDS, PA."""
