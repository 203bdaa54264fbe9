"""duan8: the service that joins Project 8 volunteers' chat to the province's reporting.

The data path, one way:

    platform ──▶ channels/<platform>/inbound.py   request → Incoming (signature checked first);
                 (telegram, zalo_bot: polling.py)  or fetched by getUpdates
             ──▶ dispatcher.py                    one transaction: dedupe, load state, the
                                                  conversation (handlers/), save, queue replies
                                                  and the message's channel memories (quote ids)
             ──▶ storage (outbox)
             ──▶ sender.py                        the one sender: claim, pace, retry, record
             ──▶ channels/<platform>/outbound.py  neutral message → platform call (console and
                                                  web chat are channel senders too)
             ──▶ platform

<platform> is telegram, messenger, zalo_oa, zalo_bot, webchat or console. What a channel keeps
between requests (poll offsets, webhook or polling, numbered choices, the quoted message,
uploaded attachments, the Zalo OA token pair, web chat's delivered replies) goes through
channels/port.py, the one module under channels/ that imports storage
(tests/test_channel_port_rule.py). worker.py runs the sender, photo downloads and pollers, each
platform's part from channels/<platform>/worker.py; app.py serves webhooks and web chat; cli.py
is the `duan8` command, its groups beside what they operate (cli_<topic>.py,
channels/<platform>/cli.py).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duan8")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
