"""Zalo Bot Platform (channel "zalo_bot", not the Official Account in `zalo_oa`): `inbound`
(webhook and event parser), `outbound` (the Bot API sender and the getUpdates poller) and `cli`."""
