"""The Page's Messenger profile, set by `duan8 facebook setup`: the Get Started button and the
persistent menu (Messenger Profile API,
https://developers.facebook.com/docs/messenger-platform/reference/messenger-profile-api/).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.channels.messenger.inbound import GET_STARTED
from bot.channels.messenger.outbound import bearer, graph_failure, json_body, make_client
from bot.config import Config
from messages_vi import _, render

log = logging.getLogger(__name__)

# The persistent menu: our own menu commands, labelled as in the conversation's menu.
PROFILE_MENU = (
    (_("Report an activity"), "cmd:report"),
    (_("My reports"), "cmd:my_reports"),
    (_("Help"), "cmd:help"),
)


class GraphError(Exception):
    """A Graph API refusal, with the message, code and trace id Meta gave."""


async def setup_profile(config: Config) -> dict[str, Any]:
    """Set the Get Started button and the persistent menu (Messenger Profile API).

    https://developers.facebook.com/docs/messenger-platform/reference/messenger-profile-api/
    """
    if not config.fb_page_access_token:
        raise GraphError("FB_PAGE_ACCESS_TOKEN is not set")
    body = {
        "get_started": {"payload": GET_STARTED},
        "persistent_menu": [{
            "locale": "default",
            "composer_input_disabled": False,  # members type their answers
            "call_to_actions": [{"type": "postback", "title": render(label, "vi"),
                                 "payload": payload} for label, payload in PROFILE_MENU],
        }],
    }
    async with make_client(config, pool=2) as client:
        try:
            response = await client.post(
                f"/{config.fb_graph_version}/me/messenger_profile", json=body,
                headers=bearer(config.fb_page_access_token))
        except httpx.TransportError as exc:
            raise GraphError(f"cannot reach {config.fb_graph_url}: {exc}") from None
    data = json_body(response)
    if not response.is_success or not isinstance(data, dict):
        raise GraphError(graph_failure(response.status_code, data).error or "refused")
    log.info("Messenger profile set: Get Started and a %d-item menu", len(PROFILE_MENU))
    return data
