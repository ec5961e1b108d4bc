"""Cache rules: which answers a shared cache (Varnish, a CDN) may keep, named and explained.

``[cache.rules.<name>]`` in the configuration, evaluated in order, first match wins. A rule
*matches* a request by route, profile, detected type and disposition; if it matches but one of
its *bypass* conditions holds (an Authorization header, a query parameter, a cookie, a Range
request, a file still quarantined, a link limited to N downloads), the answer is
``private, no-store`` and the evaluation stops there, naming the condition. A request no rule
matches is ``no-store``. Each rule carries examples of requests that should and should not be
cached; ``check-config`` runs them and ``filegate cache explain`` shows the reasoning.

Nothing here reads the network or the database: a request is described by ``Facts``. The
rules' shapes (``Rule``, ``Match``, ``Bypass``, ``Example``) are settings, in filegate.config.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from filegate.config import PRIVATE, Bypass, Example, Match, Route, Rule

NO_STORE = "no-store"

# Routes by path: which kind of answer a request gets (for matching and for explaining).
_ROUTES: list[tuple[re.Pattern[str], Route]] = [
    (re.compile(r"^/v1/share/[^/]+/[^/]+$"), "share"),
    (re.compile(r"^/v1/files/[^/]+/content$"), "content"),
    (re.compile(r"^/v1/files/[^/]+$"), "metadata"),
    (re.compile(r"^(/status|/v1/status)$"), "status"),
]
_FILE_ID = re.compile(r"^/v1/(?:share|files)/([^/]+)")


def route_of(path: str) -> Route:
    for pattern, route in _ROUTES:
        if pattern.match(path):
            return route
    return "other"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules look at: the request, and the file it is about (if any)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: frozenset[str] = frozenset()
    state: str = "clean"
    detected_type: str = ""
    profile: str = "default"
    disposition: Literal["inline", "attachment"] = "attachment"
    limited: bool = False
    file_id: str = ""
    link_id: str = ""
    link_seconds: int = 0
    status: int = 200

    @property
    def route(self) -> Route:
        return route_of(self.path)

    @property
    def cookies(self) -> frozenset[str]:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("cookie", ""))
        except Exception:
            return frozenset()
        return frozenset(cookie)


def facts_for(
    method: str, url: str, headers: dict[str, str] | None = None, **file: object
) -> Facts:
    """Facts for a request written as a method, a URL (path and query) and headers."""
    parts = urlsplit(url)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    found = _FILE_ID.match(parts.path)
    query = parse_qs(parts.query, keep_blank_values=True)
    expiry = query.get("e", [""])[0]
    if "link_seconds" not in file and expiry.isdigit():  # a share link: what is left of it
        file["link_seconds"] = int(expiry) - int(time.time())
    file.setdefault("link_id", query.get("l", [""])[0])
    return Facts(
        method=method.upper(),
        path=parts.path,
        headers=lowered,
        query=frozenset(query),
        file_id=str(file.pop("file_id", "") or (found.group(1) if found else "")),
        **file,  # type: ignore[arg-type]
    )


# What {file} and {share} stand for in an example checked without a real file.
EXAMPLE_FILE = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
EXAMPLE_HASH = "0" * 16


def example_facts(example: Example, file_id: str = EXAMPLE_FILE, share: str = "") -> Facts:
    """The request an example describes, ``{file}`` and ``{share}`` filled in."""
    method, _, target = example.request.partition(" ")
    share = share or f"/v1/share/{file_id}/{EXAMPLE_HASH}?k=k1&e=4102444800&d=a&l=L&s=S"
    url = target.replace("{share}", share).replace("{file}", file_id)
    return facts_for(
        method,
        url,
        example.headers,
        state=example.state,
        detected_type=example.type,
        profile=example.profile,
        disposition=example.disposition,
        limited=example.limited,
        link_seconds=3600,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    rule: str  # "" when no rule matched
    headers: dict[str, str]
    bypassed_by: str = ""
    skipped: tuple[tuple[str, str], ...] = ()  # (rule, why it did not match)

    @property
    def shared_cacheable(self) -> bool:
        """Whether a shared cache may store the answer."""
        directives = {
            d.strip().split("=")[0].lower() for d in self.headers["Cache-Control"].split(",")
        }
        if directives & {"no-store", "private", "no-cache"}:
            return False
        return bool(directives & {"public", "s-maxage"})


def decide(rules: dict[str, Rule], facts: Facts) -> Decision:
    """The first rule that matches decides; its bypass conditions may still say no."""
    skipped: list[tuple[str, str]] = []
    if facts.status >= 400:
        return Decision("", {"Cache-Control": NO_STORE}, skipped=(("*", "an error answer"),))
    for name, rule in rules.items():
        why_not = _mismatch(rule.match, facts)
        if why_not:
            skipped.append((name, why_not))
            continue
        bypass = _bypassed(rule.bypass, facts)
        if bypass:
            return Decision(name, {"Cache-Control": PRIVATE}, bypass, tuple(skipped))
        return Decision(name, _headers(rule, facts), "", tuple(skipped))
    return Decision("", {"Cache-Control": NO_STORE}, skipped=tuple(skipped))


def _mismatch(match: Match, facts: Facts) -> str:
    if match.routes and facts.route not in match.routes:
        return f"route {facts.route} is not {'/'.join(match.routes)}"
    if match.profiles and facts.profile not in match.profiles:
        return f"profile {facts.profile} is not {'/'.join(match.profiles)}"
    if match.types and not any(fnmatch.fnmatch(facts.detected_type, t) for t in match.types):
        return f"type {facts.detected_type or '(none)'} is not {'/'.join(match.types)}"
    if match.disposition not in ("any", facts.disposition):
        return f"disposition {facts.disposition} is not {match.disposition}"
    return ""


def _bypassed(bypass: Bypass, facts: Facts) -> str:
    """The first bypass condition of the rule that this request meets, in words; "" if none."""
    conditions = [
        (bypass.authorization and "authorization" in facts.headers, "an Authorization header"),
        *((name in facts.query, f"the query parameter {name}") for name in bypass.query),
        *((name in facts.cookies, f"the cookie {name}") for name in bypass.cookies),
        (bypass.range and "range" in facts.headers, "a Range request"),
        (bypass.quarantined and facts.state != "clean", f"a {facts.state} file"),
        (bypass.limited_link and facts.limited, "a link limited to a number of downloads"),
    ]
    return next((words for met, words in conditions if met), "")


def _headers(rule: Rule, facts: Facts) -> dict[str, str]:
    seconds = str(max(facts.link_seconds, 0))
    headers = {"Cache-Control": rule.cache_control.replace("{link_seconds}", seconds)}
    if rule.cdn_cache_control:
        headers["CDN-Cache-Control"] = rule.cdn_cache_control.replace("{link_seconds}", seconds)
    if rule.vary:
        headers["Vary"] = rule.vary
    if rule.surrogate_keys and facts.file_id:
        keys = [f"file-{facts.file_id}"] + ([f"link-{facts.link_id}"] if facts.link_id else [])
        headers["Surrogate-Key"] = " ".join(keys)
    return headers


def example_problems(rules: dict[str, Rule]) -> list[tuple[str, str]]:
    """(location, problem) for every example the rules do not decide as it says."""
    problems = []
    for name, rule in rules.items():
        for kind, want in (("cached", True), ("not_cached", False)):
            for index, example in enumerate(getattr(rule, kind)):
                decision = decide(rules, example_facts(example))
                if decision.shared_cacheable != want:
                    problems.append(
                        (f"cache.rules.{name}.{kind}[{index}]", _says(example, decision))
                    )
    return problems


def _says(example: Example, decision: Decision) -> str:
    got = "cached" if decision.shared_cacheable else "not cached"
    by = f", bypassed by {decision.bypassed_by}" if decision.bypassed_by else ""
    control = decision.headers["Cache-Control"]
    return f"{example.request} is {got} (rule {decision.rule or '(none)'}{by}: {control})"


def explain(rules: dict[str, Rule], facts: Facts) -> list[str]:
    """What ``filegate cache explain`` prints: each rule in order and what it made of this."""
    decision = decide(rules, facts)
    about = f"route {facts.route}, file {facts.state}, type {facts.detected_type or '-'}"
    lines = [f"{facts.method} {facts.path} ({about})"]
    for name, why in decision.skipped:
        lines.append(f"  skip  {name}: {why}")
    if decision.rule:
        verdict = f"bypassed by {decision.bypassed_by}" if decision.bypassed_by else "matched"
        lines.append(
            f"  {'match' if not decision.bypassed_by else 'bypass'} {decision.rule}: {verdict}"
        )
    else:
        lines.append("  no rule matched: the answer is not stored")
    lines.append(
        f"  shared caches: {'may store it' if decision.shared_cacheable else 'must not store it'}"
    )
    lines.extend(f"  {name}: {value}" for name, value in decision.headers.items())
    return lines
