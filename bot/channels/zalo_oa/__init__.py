"""Zalo Official Account (channel "zalo"): `inbound` (the signed webhook), `outbound` (the
consultation-message sender), `buttons`, `media`, `quota`, `tokens` and `cli`."""
