"""freeze: no promotion inside a freeze window, evaluated at the moment of promotion.

Windows recur by cron (`cron: "0 18 * * FRI"`) or RFC 5545 RRULE (`rrule: "FREQ=WEEKLY;BYDAY=FR;
BYHOUR=18"`) and last `duration`, or are one-off (`start`/`end`); each in its own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator

from pipeline_kit.config import parse_duration
from pipeline_kit.config.base import ConfigModel
from pipeline_kit.forge import FreezePeriod
from pipeline_kit.gates.interface import Gate, Options, Outcome, PromotionContext, denied, error, passed

_NAMES = {
    **{d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
    **{
        m: i
        for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
    },
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
FORGE_LOOKBACK = timedelta(days=31)


def cron_fields(expression: str) -> list[set[int]]:
    """Parse a 5-field cron expression into the allowed values of each field."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"cron {expression!r}: expected 5 fields (minute hour day month weekday)")
    fields = []
    for part, (low, high) in zip(parts, _RANGES, strict=True):
        allowed: set[int] = set()
        for item in part.lower().split(","):
            body, _, step_text = item.partition("/")
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            else:
                first, _, last = body.partition("-")
                start = int(_NAMES.get(first, first))
                end = int(_NAMES.get(last, last)) if last else (high if step_text else start)
            if not (low <= start <= end <= high) or step < 1:
                raise ValueError(f"cron {expression!r}: {item!r} is out of range {low}-{high}")
            allowed.update(range(start, end + 1, step))
        fields.append(allowed)
    if 7 in fields[4]:
        fields[4].add(0)  # 7 and 0 are both Sunday
    return fields


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression, searched minute by minute in its time zone."""

    fields: list[set[int]]
    both_days_restricted: bool  # day of month and weekday both given: cron then means either

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        return cls(cron_fields(expression), parts[2] != "*" and parts[4] != "*")

    def matches(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self.fields
        if moment.minute not in minute or moment.hour not in hour or moment.month not in month:
            return False
        day_ok = moment.day in day
        weekday_ok = (moment.isoweekday() % 7) in weekday
        return (day_ok or weekday_ok) if self.both_days_restricted else (day_ok and weekday_ok)

    def last_at_or_before(self, now: datetime, zone: ZoneInfo, within: timedelta) -> datetime | None:
        moment = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
        limit = moment - within
        while moment >= limit:
            if self.matches(moment.astimezone(zone)):
                return moment.astimezone(zone)
            moment -= timedelta(minutes=1)
        return None

    def next_after(self, now: datetime, zone: ZoneInfo, within: timedelta) -> datetime | None:
        moment = now.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + within
        while moment < limit:
            if self.matches(moment.astimezone(zone)):
                return moment.astimezone(zone)
            moment += timedelta(minutes=1)
        return None


class Window(ConfigModel):
    cron: str | None = None
    rrule: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    duration: str | None = None
    until_cron: str | None = None  # instead of duration: the window closes at the next match
    tz: str = "UTC"
    name: str | None = None

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        kinds = [k for k in ("cron", "rrule", "start") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a window needs exactly one of cron, rrule or start/end")
        if self.start is not None and self.end is None:
            raise ValueError("a one-off window needs start and end")
        if self.start is not None and self.end is not None:
            start = self.start if self.start.tzinfo else self.start.replace(tzinfo=self.zone)
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=self.zone)
            if end <= start:
                raise ValueError("the window ends before it starts: it would never be open")
        if self.start is None and self.duration is None and self.until_cron is None:
            raise ValueError("a recurring window needs a duration")
        if self.duration is not None and self.until_cron is not None:
            raise ValueError("a window closes after its duration or at until-cron, not both")
        if self.until_cron is not None:
            cron_fields(self.until_cron)
        if self.duration is not None:
            parse_duration(self.duration)
        if self.cron is not None:
            cron_fields(self.cron)
        if self.rrule is not None:
            self.occurrence_before(datetime.now(timezone.utc))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def open_until(self, now: datetime) -> datetime | None:
        """The end of the window containing `now`, or None when `now` is outside it."""
        if self.start is not None and self.end is not None:
            start = self.start if self.start.tzinfo else self.start.replace(tzinfo=self.zone)
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=self.zone)
            return end if start <= now < end else None
        if self.until_cron is not None:
            # open when the last start is more recent than the last end (looking back a month)
            began = self.occurrence_before(now, within=FORGE_LOOKBACK)
            until = Cron.parse(self.until_cron)
            ended = until.last_at_or_before(now, self.zone, FORGE_LOOKBACK)
            if began is None or (ended is not None and ended >= began):
                return None
            # an end more than a month ahead is reported as a month from now
            return until.next_after(now, self.zone, FORGE_LOOKBACK) or now + FORGE_LOOKBACK
        length = parse_duration(self.duration or "0s")
        began = self.occurrence_before(now, within=length)
        if began is None:
            return None
        # Elapsed time, not wall-clock time: aware arithmetic in one zone would make a 62h window
        # last 61h across the spring change and 63h across the autumn one.
        end = (began.astimezone(timezone.utc) + length).astimezone(self.zone)
        return end if now < end else None

    def occurrence_before(self, now: datetime, within: timedelta | None = None) -> datetime | None:
        """The latest start of the recurrence at or before `now` (looking back `within`)."""
        if self.rrule is not None:
            from dateutil.rrule import rrulestr

            local_now = now.astimezone(self.zone).replace(tzinfo=None)
            dtstart = (local_now - (within or timedelta(days=1)) - timedelta(days=400)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            rule = rrulestr(self.rrule, dtstart=dtstart)
            found = rule.before(local_now, inc=True)
            return found.replace(tzinfo=self.zone) if found else None
        return Cron.parse(self.cron or "").last_at_or_before(now, self.zone, within or timedelta(days=1))

    def describe(self) -> str:
        return self.name or self.cron or self.rrule or f"{self.start} - {self.end}"


class FreezeOptions(Options):
    windows: tuple[Window, ...] = ()
    forge: bool = False  # also the forge's freeze periods (GitLab), read at promotion time

    @model_validator(mode="after")
    def _something_to_check(self) -> FreezeOptions:
        if not self.windows and not self.forge:
            raise ValueError("give windows, or forge: true for the forge's freeze periods")
        return self


class FreezeGate(Gate):
    name = "freeze"
    options_model = FreezeOptions
    options: FreezeOptions

    def evaluate(self, context: PromotionContext) -> Outcome:
        windows = list(self.options.windows)
        if self.options.forge:
            if context.forge is None:
                return error("freeze periods: no forge to ask (run in CI, or configure `forge:`)")
            windows += [_from_period(p) for p in context.forge.freeze_periods()]
        for window in windows:
            until = window.open_until(context.now)
            if until is not None:
                local = until.astimezone(window.zone)
                return denied(
                    f"freeze window ({window.describe()}) until {local:%a %H:%M} {window.tz}",
                    until=until.isoformat(),
                )
        return passed(f"outside all {len(windows)} freeze window(s) at {context.now:%Y-%m-%d %H:%MZ}")


def _from_period(period: FreezePeriod) -> Window:
    """A forge freeze period (start cron, end cron) as a window lasting from a start to the next end."""
    return Window(
        cron=period.start_cron,
        until_cron=period.end_cron,
        tz=period.timezone,
        name=f"forge freeze {period.start_cron} .. {period.end_cron}",
    )
