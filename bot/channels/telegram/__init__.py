"""Telegram: `inbound` (webhook and the update parser, `shape` checks an update's fields first),
`outbound` (the Bot API sender, its aiohttp transport, the getUpdates poller) and `cli`."""
