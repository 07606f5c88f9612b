"""Code scanner drivers behind :class:`drivers.code_scanner.CodeScanner`.

- :mod:`.serial_scanner`: serial / USB-CDC scanners (pyserial), framing in :mod:`.framing`;
- :mod:`.evdev_scanner`: keyboard-wedge scanners (python-evdev), key mapping in :mod:`.keymap`;
- :mod:`.camera`: cameras (OpenCV, picamera2) and folders of frames, decoders in
  :mod:`.decoders`.

Each module is imported only when a URI names it (``drivers.uri.open_scanner``).
"""
