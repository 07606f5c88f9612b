"""Object identifiers used by the chip (ICAO 9303-10/11, BSI TR-03110), as DER content bytes."""

from __future__ import annotations

# id-PACE-ECDH-GM-AES-CBC-CMAC-128 0.4.0.127.0.7.2.2.4.2.2 (ICAO 9303-11 §9.2.1)
PACE_ECDH_GM_AES_128 = bytes.fromhex("04007F00070202040202")
# id-CA-ECDH-AES-CBC-CMAC-128 0.4.0.127.0.7.2.2.3.2.2 (ICAO 9303-11 §9.2.5; BSI TR-03110-3 A.1.1.2:
# 3.2.1 3DES, 3.2.2 AES-128, 3.2.3 AES-192, 3.2.4 AES-256), as in the CCCD's EF.CardAccess.
CA_ECDH_AES_128 = bytes.fromhex("04007F00070202030202")
# id-PK-ECDH 0.4.0.127.0.7.2.2.1.2 (ICAO 9303-11 §9.2.6)
PK_ECDH = bytes.fromhex("04007F000702020102")
# id-TA 0.4.0.127.0.7.2.2.2
TA = bytes.fromhex("04007F0007020202")
# id-icao-mrtd-security-aaProtocolObject 2.23.136.1.1.5 (ICAO 9303-11 §9.2.11)
AA_PROTOCOL = bytes.fromhex("678108010105")
# ecdsa-with-SHA256 1.2.840.10045.4.3.2
ECDSA_WITH_SHA256 = bytes.fromhex("2A8648CE3D040302")
# id-ecPublicKey 1.2.840.10045.2.1 and brainpoolP256r1 1.3.36.3.3.2.8.1.1.7
EC_PUBLIC_KEY = bytes.fromhex("2A8648CE3D0201")
BRAINPOOL_P256R1 = bytes.fromhex("2B2403030208010107")
# DG13 content OID 1.0.10646.1.0.8 as found on CCCD cards (docs/cccd.md §4)
DG13_CONTENT = bytes.fromhex("28D316010008")

LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
CSCA_MASTER_LIST = "2.23.136.1.1.2"
MASTER_LIST_SIGNING_KEY = "2.23.136.1.1.3"
