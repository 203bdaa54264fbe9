"""Photos sent before a report is started: kept a short while, offered to the next report.

Members often send the pictures first and only then think of the report. Those photos wait in
the conversation's draft under LOOSE for `loose_photo_minutes`; the report started next asks
"Gắn 2 ảnh vừa gửi vào báo cáo này?". A photo declined, or not claimed in time, is deleted with
its file (here when the member next writes, otherwise by the retention job).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.flow import Ctx, command_button
from handlers.types import Inbound
from messages_vi import _
from storage import media
from storage.enums import PhotoError

LOOSE = "loose_photos"  # in a draft outside any flow: {"ids": [...], "at": iso time}
OFFERED = "offered_photos"  # in a report draft: ids asked about, not yet attached
ATTACH = "attach_photos"
LEAVE = "leave_photos"


def refusals(ctx: Ctx, inbound: Inbound) -> None:
    """Say why a photo was not taken; nothing of it was stored."""
    for photo in inbound.photos:
        if photo.error == PhotoError.TOO_LARGE:
            ctx.say(_("That photo is too large (more than {limit} MB). Send a smaller one.",
                      limit=ctx.settings.max_photo_bytes // (1024 * 1024)))
        elif photo.error or photo.media_id is None:
            ctx.say(_("I could not read that file as a photo. Send a JPEG or PNG picture."))


def keep_loose(ctx: Ctx, inbound: Inbound) -> bool:
    """Photos from someone in no conversation: keep them for the report that follows, or,
    when nothing is to be kept (LOOSE_PHOTO_MINUTES=0), delete them at once and say so.
    True when photos are now waiting (announce_loose tells the member)."""
    refusals(ctx, inbound)
    new = [p.media_id for p in inbound.photos if p.media_id is not None and p.error is None]
    if not new:
        return False
    if ctx.settings.loose_photo_minutes <= 0:
        _discard(ctx, new)
        ctx.say(_("To send photos, start a report first."),
                buttons=[command_button(_("Report an activity"), "report")])
        return False
    held = [i for i in _held(ctx) if i not in new] + new
    ctx.draft[LOOSE] = {"ids": held[:ctx.settings.max_photos], "at": ctx.now.isoformat()}
    _discard(ctx, held[ctx.settings.max_photos:])
    return True


def announce_loose(ctx: Ctx) -> None:
    """How long the photos wait, and the way to use them."""
    count = len(_held(ctx))
    if not count:
        return
    ctx.say(_("I keep {count} photo(s) for {minutes} minutes. Start a report to attach them; "
              "otherwise they are deleted.", count=count,
              minutes=ctx.settings.loose_photo_minutes),
            buttons=[command_button(_("Report an activity"), "report"),
                     command_button(_("Delete the photos"), LEAVE)])


def _held(ctx: Ctx) -> list[int]:
    """The loose photos still within their time; the expired ones are deleted now."""
    loose = ctx.draft.get(LOOSE)
    if not isinstance(loose, dict):
        return []
    ids = [int(i) for i in loose.get("ids", []) if isinstance(i, int)]
    try:
        at = datetime.fromisoformat(str(loose.get("at")))
    except ValueError:
        at = None
    window = timedelta(minutes=ctx.settings.loose_photo_minutes)
    if at is None or ctx.now - at > window:
        _discard(ctx, ids)
        ctx.draft.pop(LOOSE, None)
        return []
    return ids


def take_loose(ctx: Ctx) -> list[int]:
    """The loose photos to offer to a report being started (they leave the old draft)."""
    ids = _held(ctx)
    ctx.draft.pop(LOOSE, None)
    return ids


def offer(ctx: Ctx, ids: list[int]) -> None:
    """Ask whether the photos sent just before belong to the report now started."""
    if not ids:
        return
    ctx.draft[OFFERED] = ids
    ctx.say(_("Attach the {count} photo(s) you just sent to this report?", count=len(ids)),
            buttons=[command_button(_("Attach the photos"), ATTACH),
                     command_button(_("Do not attach"), LEAVE)])


def attach(ctx: Ctx) -> None:
    """"Gắn ảnh": the offered photos join the report's draft."""
    offered = [int(i) for i in ctx.draft.pop(OFFERED, []) if isinstance(i, int)]
    if not offered or "media" not in ctx.draft:
        ctx.say(_("Those photos are no longer kept. Please send them again."))
        return
    photos: list[int] = ctx.draft["media"]
    room = max(0, ctx.settings.max_photos - len(photos))
    added = [i for i in offered if i not in photos][:room]
    photos.extend(added)
    _discard(ctx, [i for i in offered if i not in photos])
    ctx.say(_("{count} photo(s) attached to this report.", count=len(added)))


def leave(ctx: Ctx) -> None:
    """"Không gắn" or "Xóa ảnh": the photos sent before are deleted, files and rows."""
    ids = [int(i) for i in ctx.draft.pop(OFFERED, []) if isinstance(i, int)]
    loose = ctx.draft.pop(LOOSE, None)
    if isinstance(loose, dict):
        ids += [int(i) for i in loose.get("ids", []) if isinstance(i, int)]
    # The same picture sent again for the report is the same row: that one stays.
    ids = [i for i in ids if i not in ctx.draft.get("media", [])]
    _discard(ctx, ids)
    ctx.say(_("The photos were deleted.") if ids else _("There are no photos waiting."))


def _discard(ctx: Ctx, ids: list[int]) -> None:
    if ids:
        media.discard_unattached(ctx.session, ctx.settings.media_dir, ctx.identity.id, ids)
