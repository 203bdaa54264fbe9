"""Console chat (channel "console"): `chat` (a terminal that types as one member and prints the
replies the shared sender hands it) and `cli` (`duan8 chat`)."""
