"""One package per platform, each with its inbound side (webhook or poll → Incoming) apart from
its outbound side (neutral message → platform call), its start-up for the worker and its CLI group:
telegram/, messenger/ (channel "facebook"), zalo_oa/ (channel "zalo"), zalo_bot/, webchat/,
console/.

Shared here: port.py (the one module that imports storage: what a channel keeps between
requests), base.py (what a sender gives the shared sender), inbound.py (field readers, /start,
webhook secret), polling.py (the poll loop and webhook switch), numbered.py (buttons as numbered
choices), download.py (members' photos under a cap) and media_out.py (files uploaded once).
"""
