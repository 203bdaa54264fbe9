"""One module per platform: each turns platform requests into Incoming and Replies into calls.

What a channel keeps between requests goes through `bot.channels.port`, the one module here
that imports storage.
"""
