"""Zalo OA query buttons on consultation messages: what is sent, and how a tap comes back.

A consultation message (`POST /v3.0/oa/message/cs`) carries buttons next to its `text` as
`attachment: {"type": "template", "payload": {"buttons": [{"title", "type", "payload"}]}}`:
- maintained code sending exactly this to `v3.0/oa/message/cs`: ChatbotXIO/ChatbotX
  `integrations/zalo/src/handlers/message/outgoing-message/send-text.ts` (text + buttons) and
  `send-button.ts` (`oa.query.hide` with a string payload), limits in
  `integrations/zalo/src/constants.ts` (`MAX_BUTTONS = 5`) and
  `integrations/zalo/src/schemas/webhook.ts` (`buttons ... .max(5)`);
- Zalo's own SDK builds the same `message` (`sendListButtonMessagetoUserId`, then on the older
  `v2.0/oa/message`): zaloplatform/ZaloDotNetSDK `src/sdk/oa/ZaloClient.cs`, buttons serialised
  in `src/sdk/utils/JsonUtils.cs` (`parseListButton2Json`);
- a reseller's page for the same call, "Hàm gửi tin Zalo Tư Vấn dạng Button"
  (devesms/gitbook_esms_for_develop `esms-api/ham-gui-tin-nhan-zns/
  ham-gui-tin-zalo-tu-van-dang-button.md`, https://developers.esms.vn/en/esms-api/send-sms-api/
  send-zalo-message-consulting-button).

A tap on an `oa.query.hide` button makes Zalo send a message from the member to the OA whose
content is the button's payload, hidden on the member's screen (the eSMS page above:
"hệ thống sẽ gửi một tin nhắn có nội dung chứa trong data từ người quan tâm đến Official
Account. Tin nhắn này sẽ bị ẩn"); it reaches the webhook as a `user_send_text` whose
`message.text` is the payload, which ChatbotX reads back by a prefix of its own
(`integrations/zalo/src/incoming-message/index.ts`, "postback_"). Ours is PREFIX.

Limits: at most 5 buttons (ChatbotX above); a title of at most 100 characters and a query
payload of at most 1,000 (the action table of eSMS's transaction-message page,
devesms/gitbook_esms_for_develop `esms-api/ham-gui-tin-nhan-zns/ham-gui-tin-zalo-giao-dich.md`,
whose transaction buttons alone stop at 35 characters; the same figures in the
@warriorteam/redai-zalo-sdk guide, https://app.unpkg.com/@warriorteam/redai-zalo-sdk@1.32.17/
files/docs/BUTTON_TYPES_GUIDE.md). ChatbotX's schema is stricter, titles of at most 20
characters, with no source given. The stricter figure is the one kept: a title Zalo refused
would cost a refused call on every reply before the numbered text goes alone (outbound.py),
while a cap of 20 costs nothing, since a longer title is never cut, only left out. Buttons that
do not fit are not sent at all: the numbered list, always in the text, is then the only way to
choose.
"""

from __future__ import annotations

from typing import Any

PREFIX = "#duan8:"  # marks a tap on our own button, as opposed to anything a member types
QUERY_HIDE = "oa.query.hide"
MAX_BUTTONS = 5
TITLE_LIMIT = 20  # ChatbotX's schema; other sources allow 100 (see above)
ZALO_PAYLOAD_LIMIT = 1000
# What a conversation payload may be once read back (storage and dispatch keep them short); a
# longer one is never sent as a button, so a tap can never arrive cut.
PAYLOAD_LIMIT = 200


def query_buttons(buttons: list[Any]) -> list[dict[str, str]]:
    """Zalo query buttons for a reply's buttons; [] unless all of them fit Zalo's limits."""
    found = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        title = str(button.get("label") or "").strip()
        payload = str(button.get("payload") or "")
        if not 0 < len(title) <= TITLE_LIMIT or not 0 < len(payload) <= PAYLOAD_LIMIT \
                or len(PREFIX + payload) > ZALO_PAYLOAD_LIMIT:
            return []
        found.append({"title": title, "type": QUERY_HIDE, "payload": PREFIX + payload})
    return found if len(found) <= MAX_BUTTONS else []


def with_buttons(message: dict[str, Any], buttons: list[dict[str, str]]) -> dict[str, Any]:
    """A text consultation message with query buttons under it."""
    return {**message, "attachment": {"type": "template", "payload": {"buttons": buttons}}}


def tapped(text: str) -> str | None:
    """The payload of one of our buttons the member tapped, or None for typed text."""
    text = text.strip()
    if not text.startswith(PREFIX):
        return None
    payload = text[len(PREFIX):]
    return payload if 0 < len(payload) <= PAYLOAD_LIMIT else None
