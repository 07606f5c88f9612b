"""Transports to real hardware (PC/SC, NFC, scanners, camera, GPIO); nothing about CCCD here."""
