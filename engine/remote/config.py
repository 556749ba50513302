"""Where the shared cache is and how to sign in to it, checked before anything runs.

The URL comes from ``--remote-cache`` > ``$RECIPE_REMOTE_CACHE`` > the plan's ``remote_cache:``
(an empty ``--remote-cache ''`` or variable turns a plan's off). It is ``http://`` or
``https://``, a host, an optional port and path prefix; no user or password in it (a URL is
printed in warnings and shows in ``ps``), no query or fragment.

Credentials, never in a document and never printed: a bearer token from the environment variable
the plan names (``remote_cache: {url: ..., token_env: NAME}``, which must then be set) or else
from ``$RECIPE_REMOTE_CACHE_TOKEN`` when set; otherwise basic auth from ``~/.netrc``'s entry for
the host (``$NETRC`` names another file), as curl, ccache and Bazel read it; otherwise none.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from engine.errors import Pos, UsageError

TOKEN_VARIABLE = "RECIPE_REMOTE_CACHE_TOKEN"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


class RemoteConfigError(UsageError):
    """The remote cache's URL or credentials cannot be used (exit 2, before anything runs)."""


@dataclass(frozen=True)
class RemoteConfig:
    url: str  # as given, without a trailing '/': shown in warnings
    https: bool
    host: str  # without brackets for IPv6
    port: int
    prefix: str  # the path before /ac/ and /cas/, '' or starting with '/'
    upload: bool = False
    token_env: str | None = None  # the variable named by the plan (workers read their own)
    #: request headers (Authorization); kept out of repr so that no traceback or log shows it
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def parse(url: str, *, upload: bool = False, token_env: str | None = None,
          where: str = "--remote-cache", pos: Pos | None = None) -> RemoteConfig:
    """A checked configuration; ``where`` names the option, variable or key it came from."""

    def bad(what: str, fix: str) -> RemoteConfigError:
        return RemoteConfigError(f"{where} {_shown(url)}: {what}", fix, pos=pos)

    if not url.isprintable() or any(c.isspace() for c in url):
        raise bad("is not a URL (it holds spaces or control characters)",
                  "write it as http://HOST[:PORT][/PREFIX]")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise bad(f"is not a URL ({error})", "write it as http://HOST[:PORT][/PREFIX]") from None
    if parts.scheme not in ("http", "https"):
        raise bad(f"the scheme '{parts.scheme or '(none)'}' is not supported",
                  "recipe speaks Bazel's HTTP remote-cache protocol: use http:// or https://")
    if "@" in parts.netloc:
        raise bad("holds a user or password",
                  f"put a token in ${TOKEN_VARIABLE} (or the variable token_env: names) or the "
                  "password in ~/.netrc; a URL is shown in messages")
    host = parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") \
        else parts.netloc
    if not host or not _HOST.fullmatch(host):
        raise bad("has no usable host", "write it as http://HOST[:PORT][/PREFIX]")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise bad("has a query or fragment", "write it as http://HOST[:PORT][/PREFIX]")
    https = parts.scheme == "https"
    return RemoteConfig(url=url.rstrip("/"), https=https, host=host.strip("[]"),
                        port=port or (443 if https else 80), prefix=parts.path.rstrip("/"),
                        upload=upload, token_env=token_env,
                        headers=_credentials(host.strip("[]"), token_env, pos))


def _credentials(host: str, token_env: str | None, pos: Pos | None) -> dict[str, str]:
    if token_env is not None:
        if not _VARIABLE.fullmatch(token_env):
            raise RemoteConfigError(f"token_env {token_env!r} is not a variable name",
                                    "name an environment variable: letters, digits and '_'",
                                    pos=pos)
        token = os.environ.get(token_env)
        if not token:
            raise RemoteConfigError(f"the remote cache's token variable ${token_env} is not set",
                                    f"export {token_env}=<token> (CI: from its secret store), "
                                    "or remove token_env: from the plan", pos=pos)
        return {"Authorization": f"Bearer {token}"}
    if os.environ.get(TOKEN_VARIABLE):
        return {"Authorization": f"Bearer {os.environ[TOKEN_VARIABLE]}"}
    # netrc (and shlex, which it imports) only when there is a file to read: most runs have none
    named = os.environ.get("NETRC")
    path = named if named is not None else os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.isfile(path):
        return {}  # no ~/.netrc: no credentials, as curl does
    import base64
    import netrc

    try:
        # ``None`` for ~/.netrc: netrc then refuses one that others may read, as ftp does
        entry = netrc.netrc(named).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        entry = None  # an unreadable ~/.netrc, or one this is not for: no credentials
    if entry and entry[0] and entry[2] is not None:
        pair = f"{entry[0]}:{entry[2]}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {}


def _shown(url: str) -> str:
    """A URL as an error line quotes it: on one line, short, a password never shown."""
    text = url if len(url) <= 200 else url[:200] + "..."
    text = re.sub(r"//[^/@]*@", "//***@", text)
    return repr(text) if not text.isprintable() or not text or " " in text else text


def choose(option: str | None, variable: str | None, plan: tuple[str, str | None, Pos] | None,
           upload: bool) -> RemoteConfig | None:
    """The configuration in force: the option, else the variable, else the plan's key; an empty
    option or variable means none. ``plan`` is (url, token_env, position)."""
    if option is not None:
        return parse(option, upload=upload) if option else None
    if variable is not None:
        return parse(variable, upload=upload, where="$RECIPE_REMOTE_CACHE") if variable else None
    if plan is not None:
        url, token_env, pos = plan
        return parse(url, upload=upload, token_env=token_env, where="remote_cache:", pos=pos)
    return None
