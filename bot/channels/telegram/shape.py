"""The shape of the Telegram Update fields we read, checked before python-telegram-bot reads them.

Bot API reference ("Update", "Message", "CallbackQuery", "ChatMemberUpdated", "PhotoSize",
"Document", "User", "Chat"): the types and the fields that are always present. Anything we do not
read is left alone; anything we read must have its documented type, or the update is refused.
"""

from __future__ import annotations

from typing import Any

INT_LIMIT = 2**63  # Bot API ids fit in a signed 64-bit integer
TIME_LIMIT = 2**33  # Unix seconds, far past any real date


class BadUpdate(ValueError):
    """An update whose fields do not have the documented types."""


def _int(value: Any, where: str, *, required: bool = True, low: int = -INT_LIMIT,
         high: int = INT_LIMIT) -> None:
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise BadUpdate(f"{where} is not an integer in range")


def _str(value: Any, where: str, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise BadUpdate(f"{where} is not a string")


def _dict(value: Any, where: str, *, required: bool = False) -> dict[str, Any] | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise BadUpdate(f"{where} is not an object")
    return value


def _user(value: Any, where: str, *, required: bool) -> None:
    user = _dict(value, where, required=required)
    if user is None:
        return
    _int(user.get("id"), f"{where}.id")
    if not isinstance(user.get("is_bot"), bool):
        raise BadUpdate(f"{where}.is_bot is not a boolean")
    _str(user.get("first_name"), f"{where}.first_name", required=True)
    _str(user.get("language_code"), f"{where}.language_code")


def _chat(value: Any, where: str) -> None:
    chat = _dict(value, where, required=True)
    assert chat is not None
    _int(chat.get("id"), f"{where}.id")
    _str(chat.get("type"), f"{where}.type", required=True)


def _file(value: Any, where: str, *, sized: bool) -> None:
    item = _dict(value, where, required=True)
    assert item is not None
    _str(item.get("file_id"), f"{where}.file_id", required=True)
    _str(item.get("file_unique_id"), f"{where}.file_unique_id", required=True)
    _int(item.get("file_size"), f"{where}.file_size", required=False, low=0)
    if sized:
        _int(item.get("width"), f"{where}.width", low=0)
        _int(item.get("height"), f"{where}.height", low=0)
    else:
        _str(item.get("mime_type"), f"{where}.mime_type")


def _message(value: Any, where: str, *, required: bool = False) -> None:
    message = _dict(value, where, required=required)
    if message is None:
        return
    _int(message.get("message_id"), f"{where}.message_id")
    _int(message.get("date"), f"{where}.date", low=0, high=TIME_LIMIT)
    _int(message.get("edit_date"), f"{where}.edit_date", required=False, low=0, high=TIME_LIMIT)
    _chat(message.get("chat"), f"{where}.chat")
    _user(message.get("from"), f"{where}.from", required=False)
    _str(message.get("text"), f"{where}.text")
    _str(message.get("caption"), f"{where}.caption")
    photo = message.get("photo")
    if photo is not None:
        if not isinstance(photo, list) or len(photo) > 20:
            raise BadUpdate(f"{where}.photo is not a list of sizes")
        for index, size in enumerate(photo):
            _file(size, f"{where}.photo[{index}]", sized=True)
    if message.get("document") is not None:
        _file(message["document"], f"{where}.document", sized=False)


def valid_update(data: dict[str, Any]) -> None:
    """Raise BadUpdate unless every field we read has its documented type."""
    _int(data.get("update_id"), "update_id", low=0)
    _message(data.get("message"), "message")
    _message(data.get("edited_message"), "edited_message")
    query = _dict(data.get("callback_query"), "callback_query")
    if query is not None:
        _str(query.get("id"), "callback_query.id", required=True)
        _user(query.get("from"), "callback_query.from", required=True)
        _str(query.get("data"), "callback_query.data")
        _message(query.get("message"), "callback_query.message")
    change = _dict(data.get("my_chat_member"), "my_chat_member")
    if change is not None:
        _chat(change.get("chat"), "my_chat_member.chat")
        _user(change.get("from"), "my_chat_member.from", required=True)
        _int(change.get("date"), "my_chat_member.date", low=0, high=TIME_LIMIT)
        for side in ("old_chat_member", "new_chat_member"):
            member = _dict(change.get(side), f"my_chat_member.{side}", required=True)
            assert member is not None
            _str(member.get("status"), f"my_chat_member.{side}.status", required=True)
            _user(member.get("user"), f"my_chat_member.{side}.user", required=True)
