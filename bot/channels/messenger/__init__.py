"""Facebook Messenger (channel "facebook"): `inbound` (the signed webhook), `outbound` (the Send
API sender, attachment uploads, the Page profile), `graph_versions` and `cli`."""
