"""Web chat (channel "webchat"): `inbound` (the page and its JSON API) and `outbound` (delivery
is marking a row sent; the page polls for it)."""
