"""Input side: storage options and credentials, URLs, listing (fsspec), fingerprints, text files.

Probing a file's header is :mod:`pipeline.probe`; decoding and resampling :mod:`pipeline.decode`.

"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from .errors import MESSAGE_LIMIT, InputError, one_line

__all__ = [
    "AUDIO_EXTENSIONS",
    "CREDENTIAL_KEYS",
    "check_url_credentials",
    "filesystem",
    "fingerprint",
    "is_url",
    "join_uri",
    "list_inputs",
    "normalise_store_url",
    "read_text",
    "sanitize_storage_options",
    "stat_fingerprint",
]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64",
     ".rf64", ".caf", ".m4a", ".aac", ".opus", ".wma", ".webm", ".mp4"}
)
#: storage_options keys that carry secrets: never put into task graphs, attributes or logs.
CREDENTIAL_KEYS: frozenset[str] = frozenset(
    {"key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
     "aws_session_token", "session_token", "access_key", "secret_key", "credentials",
     "account_key", "sas_token", "connection_string", "client_secret"}
)


def sanitize_storage_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Storage options safe to ship to workers: refuses credentials (they come from the env).

    Keys (``key``, ``secret``, ``token`` ...), cookies, and HTTP headers that authenticate
    (``Authorization``, ``Cookie``, ``X-Api-Key``, any name with auth, token, key, secret,
    session, signature or password in it) are all credentials, however deeply nested.
    """
    options = dict(options or {})
    found = sorted(_credential_paths(options))
    if found:
        raise InputError(
            "Expected no credentials in storage options (they would travel in the task graph); "
            f"got {', '.join(found)}: set them in the environment (e.g. AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, or FSSPEC_HTTP='{\"headers\": {...}}' for HTTP headers) or use "
            "the cluster's credential chain"
        )
    return options


#: words that make an HTTP header (or a URL query parameter) a credential
_SECRET_WORDS = ("auth", "token", "key", "secret", "session", "signature", "password", "cookie", "credential")
#: query parameters of signed URLs (S3, GCS, Azure SAS) that carry no secret word of their own
_SIGNED_URL_PARAMS = frozenset({"sig", "se", "sp", "sv", "x-amz-date", "x-goog-date", "expires"})


def _credential_paths(options: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in options.items():
        name = str(key).lower()
        if name in CREDENTIAL_KEYS or name in ("cookies", "cookie_jar", "auth"):
            yield prefix + str(key)
        elif name == "headers" and isinstance(value, Mapping):
            yield from (f"{prefix}{key}.{h}" for h in value if any(w in str(h).lower() for w in _SECRET_WORDS))
        elif isinstance(value, Mapping):
            yield from _credential_paths(value, prefix + str(key) + ".")


def check_url_credentials(url: str) -> None:
    """Refuse a URL that carries a credential (``user:password@``, a signed URL's query).

    Input and store URLs travel in task graphs, logs and the store's ``file_path``: a signed
    URL's signature or a password in it would too. Raises :class:`InputError`.
    """
    if not is_url(url):
        return
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None or (parts.username and "@" in parts.netloc):
        raise InputError(f"Expected a URL without credentials, got a user name or password in {parts.scheme}://...@{parts.hostname}: "
                         "give them to the filesystem through the environment or its own configuration")
    secret = sorted({k for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                     if k.lower() in _SIGNED_URL_PARAMS or any(w in k.lower() for w in _SECRET_WORDS)})
    if secret:
        raise InputError(f"Expected a URL without credentials, got a signed URL (query parameters {', '.join(secret)}) "
                         f"for {parts.scheme}://{parts.hostname}{parts.path}: use the bucket URL with credentials from the "
                         "environment, or the filesystem's own configuration")


def is_url(path: str) -> bool:
    """True for fsspec URLs other than ``file://`` (which is a local path)."""
    return "://" in path and not path.startswith("file://")


def normalise_store_url(url: str) -> str:
    """A store's URL as the store records it: a URL without its trailing slash, a local path
    (``file://`` included) absolute with ``~`` expanded."""
    if is_url(url):
        return url.rstrip("/")
    return os.path.abspath(os.path.expanduser(url.removeprefix("file://")))


def filesystem(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and path of ``uri``; storage options apply to URLs only."""
    try:
        fs, path = url_to_fs(uri, **(dict(storage_options or {}) if is_url(uri) else {}))
    except (ImportError, ValueError) as exc:
        raise InputError(f"Cannot open {uri}: {one_line(exc, MESSAGE_LIMIT)}") from exc
    return fs, path


def join_uri(fs: fsspec.AbstractFileSystem, original: str, path: str) -> str:
    """The URI of ``path`` (as listed by ``fs``) in the style of ``original``."""
    if is_url(original):
        if is_url(path):  # HTTP(S) filesystems list full URLs
            return path
        protocol = original.split("://", 1)[0]
        return f"{protocol}://{path.lstrip('/')}"
    return path


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def list_inputs(inputs: Sequence[str | os.PathLike[str]], storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Expand files, directories (recursive, audio extensions only) and globs into sorted URIs.

    A glob keeps every match with an audio extension, directories included, so a directory
    named ``x.wav`` becomes an input that fails with a clear reason instead of vanishing.
    Raises :class:`InputError` for a path that does not exist or a glob that matches nothing.
    """
    if not inputs:
        raise InputError("Expected at least one input path, got none")
    found: dict[str, None] = {}
    for raw in inputs:
        item = os.fspath(raw)
        check_url_credentials(item)
        if not is_url(item):
            item = os.path.abspath(os.path.expanduser(item.removeprefix("file://")))
        fs, path = filesystem(item, storage_options)
        try:
            if _has_magic(path):
                matches = sorted(fs.glob(path))
                hits = [m for m in matches if os.path.splitext(m)[1].lower() in AUDIO_EXTENSIONS or fs.isfile(m)]
                if not hits:
                    raise InputError(f"No files match {item}")
                for match in hits:
                    if fs.isdir(match) and os.path.splitext(match)[1].lower() not in AUDIO_EXTENSIONS:
                        hits_in_dir = _find_audio(fs, match)
                        found.update(dict.fromkeys(join_uri(fs, item, m) for m in hits_in_dir))
                    else:
                        found[join_uri(fs, item, match)] = None
            elif fs.isdir(path):
                hits = _find_audio(fs, path)
                if not hits and os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS:
                    hits = [path]  # a directory named like audio: an input that fails with a reason
                if not hits:
                    raise InputError(f"No audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {item}")
                found.update(dict.fromkeys(join_uri(fs, item, m) for m in hits))
            elif fs.exists(path):
                found[join_uri(fs, item, path)] = None
            else:
                raise InputError(f"No such file or directory: {item}")
        except InputError:
            raise
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot list {item}: {one_line(exc, MESSAGE_LIMIT)}") from exc
    return sorted(found)


def _find_audio(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Audio files under ``path``, plus directories named like audio files that hold none
    (``x.wav/``): those become inputs that fail with a reason instead of vanishing."""
    entries = fs.find(path, withdirs=True, detail=True)
    audio = [p for p, e in entries.items() if os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS]
    files = {p for p in audio if entries[p].get("type") != "directory"}
    lonely = {p for p in audio if p not in files and not any(f.startswith(p.rstrip("/") + "/") for f in files)}
    return sorted(files | lonely)


def stat_fingerprint(info: Mapping[str, Any]) -> tuple[int, str]:
    """``(size, fingerprint)`` from an fsspec ``info()`` mapping: size plus ETag or mtime."""
    size = int(info.get("size") or 0)
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created") or ""
    if isinstance(stamp, float):
        stamp = f"{stamp:.6f}"
    return size, f"{size}-{str(stamp).strip(chr(34))}"


def fingerprint(uri: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """The current size + mtime/ETag fingerprint of ``uri`` ("" when it is gone)."""
    try:
        fs, path = filesystem(uri, storage_options)
        return stat_fingerprint(fs.info(path))[1]
    except (OSError, ValueError):
        return ""


def read_text(uri: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """Whole text file (labels CSV) from any fsspec URL or local path."""
    try:
        fs, path = filesystem(uri if is_url(uri) else os.path.abspath(uri), storage_options)
        data: bytes = fs.cat_file(path)
        return data.decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"No such labels file: {uri}") from exc
    except OSError as exc:
        raise InputError(f"Cannot read {uri}: {one_line(exc, MESSAGE_LIMIT)}") from exc
