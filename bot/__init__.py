"""duan8: the service that joins Project 8 volunteers' chat to the province's reporting.

The data path, one way:

    platform ──▶ channels/telegram.py, zalo.py…  request → Incoming (signature checked first)
             ──▶ dispatcher.py                   one transaction: dedupe, load state, the
                                                 conversation (handlers/), save, queue replies
                                                 and the message's channel memories (quote ids)
             ──▶ storage (outbox)
             ──▶ sender.py                       the one sender: claim, pace, retry, record
             ──▶ channels/telegram_bot.py,        neutral message → platform call (console and
                 zalo_api.py…                    web chat are channel senders too)
             ──▶ platform

What a channel keeps between requests (poll offsets, webhook or polling, numbered choices, the
quoted message, uploaded attachments, web chat's delivered replies) goes through
channels/port.py, its door to storage; the Zalo OA token pair and reply quota still open
sessions of their own (tests/test_channel_port_rule.py lists them). worker.py runs the sender,
photo downloads and pollers; app.py serves webhooks and web chat; cli.py and cli_*.py are the
`duan8` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duan8")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
