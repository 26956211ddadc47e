"""Chat prompts exactly as each model's own tokenizer builds them; untrusted text stays text.

`ChatFormatter` (one per deployment) validates OpenAI-style messages, renders the model's chat
template in a sandboxed Jinja environment configured like `transformers` (so `render` equals
`apply_chat_template(..., tokenize=False)`), and encodes the result. `encode_messages` gives the
ids Hugging Face gives for benign content, except that message content can never become an added
token: only the template's own markers (`<|eot_id|>`, `<|im_start|>`, ...) are special.

How content is isolated: the conversation is rendered a second time with a unique sentinel in place
of each content; the text around the sentinels is the template's own. Added tokens are matched in
that template text only; each run of ordinary text (template text and content together, so BPE
merges across the boundary exactly as in a whole-string encode) is encoded by a copy of the
tokenizer that has no added tokens at all.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from tritonkit.catalog import ModelSpec, chat_template_source

if TYPE_CHECKING:
    from tritonkit.deployment import Deployment

__all__ = ["ALLOWED_KEYS", "ALLOWED_ROLES", "CATALOG_DEFAULT", "ChatError", "ChatFormatter"]

ALLOWED_ROLES: Final = ("system", "user", "assistant")
ALLOWED_KEYS: Final = ("role", "content")
Message = dict[str, str]


class ChatError(ValueError):
    """Messages are malformed or the template refused them; the message names the problem."""


class _CatalogDefault:
    def __repr__(self) -> str:
        return "CATALOG_DEFAULT"


CATALOG_DEFAULT: Final = _CatalogDefault()
"""`system_prompt` value meaning "the catalog's default system prompt for this model"."""


# ---- validation -----------------------------------------------------------------------------


def validate_messages(obj: str | bytes | Sequence[Any]) -> list[Message]:
    """A checked copy of `obj` (a JSON string or a list) as `[{"role": ..., "content": ...}]`."""
    if isinstance(obj, (str, bytes, bytearray)):
        try:
            obj = json.loads(obj)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ChatError(f"messages: not valid JSON ({exc})") from None
    if not isinstance(obj, list):
        raise ChatError(
            f"messages: expected a list of {{role, content}} objects, got {type(obj).__name__}"
        )
    if not obj:
        raise ChatError("messages: the list is empty; at least one message is needed")
    out: list[Message] = []
    for i, item in enumerate(obj):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise ChatError(f"{where}: expected an object, got {type(item).__name__}")
        unknown = [k for k in item if k not in ALLOWED_KEYS]
        if unknown:
            raise ChatError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(ALLOWED_KEYS)} (tools are not supported)"
            )
        if "role" not in item:
            raise ChatError(f"{where}: missing 'role'; allowed roles: {', '.join(ALLOWED_ROLES)}")
        role = item["role"]
        if role not in ALLOWED_ROLES:
            raise ChatError(
                f"{where}.role: {role!r} is not allowed; allowed roles: {', '.join(ALLOWED_ROLES)}"
            )
        if "content" not in item:
            raise ChatError(f"{where}: missing 'content' (a string)")
        content = item["content"]
        if not isinstance(content, str):
            raise ChatError(f"{where}.content: expected a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


# ---- the sandboxed Jinja environment (as transformers.utils.chat_template_utils) -------------


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
    sort_keys: bool = False,
) -> str:  # fmt: skip
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)  # fmt: skip


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template the way `transformers` does, in an immutable sandbox."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ChatError(f"chat template does not parse: {exc}") from None


# ---- the formatter --------------------------------------------------------------------------


class ChatFormatter:
    """Renders and encodes chats for one model (catalog spec + tokenizer folder)."""

    def __init__(
        self,
        spec: ModelSpec,
        tokenizer_dir: str | Path,
        system_prompt: str | _CatalogDefault | None = CATALOG_DEFAULT,
        date_string: str | None = None,
    ) -> None:
        self.spec = spec
        self.tokenizer_dir = Path(tokenizer_dir)
        if isinstance(system_prompt, _CatalogDefault):
            system_prompt = spec.default_system_prompt
        self.system_prompt: str | None = system_prompt or None
        self.date_string = date_string
        self._tok = PreTrainedTokenizerFast.from_pretrained(str(self.tokenizer_dir))
        self._backend: Tokenizer = self._tok.backend_tokenizer
        self._plain = _without_added_tokens(self._backend)
        self._added_ids = frozenset(self._tok.added_tokens_decoder)
        own = self._tok.chat_template
        if isinstance(own, dict):  # named templates: use the default one
            own = own.get("default")
        self.template_origin = "tokenizer" if own else "catalog"
        self.chat_template: str = own or chat_template_source(spec.chat_template)
        self._template = compile_template(self.chat_template)
        self._prefix, self._suffix = self._post_processor_ids()
        self._piece_cache: dict[str, list[str | int]] = {}

    @classmethod
    def from_deployment(cls, dep: Deployment) -> ChatFormatter:
        """The formatter for a deployment: its tokenizer folder, system prompt and date_string."""
        from tritonkit.tokenizer_assets import tokenizer_dir_for

        return cls(
            dep.spec,
            tokenizer_dir_for(dep),
            system_prompt=dep.system_prompt,
            date_string=dep.serving.date_string,
        )

    def with_options(
        self,
        *,
        system_prompt: str | _CatalogDefault | None = CATALOG_DEFAULT,
        date_string: str | None = None,
    ) -> ChatFormatter:
        """A formatter sharing this one's tokenizer, with another system prompt / date_string."""
        clone = copy.copy(self)
        if isinstance(system_prompt, _CatalogDefault):
            system_prompt = self.spec.default_system_prompt
        clone.system_prompt = system_prompt or None
        clone.date_string = date_string
        return clone

    # ---- facts ------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The loaded fast tokenizer (Hugging Face)."""
        return self._tok

    @property
    def stop_token_ids(self) -> list[int]:
        return list(self.spec.stop_token_ids)

    @property
    def bos_token_id(self) -> int | None:
        return self.spec.bos_token_id

    # ---- rendering --------------------------------------------------------------------------
    def validate_messages(self, obj: str | bytes | Sequence[Any]) -> list[Message]:
        return validate_messages(obj)

    def _prepare(self, messages: str | bytes | Sequence[Any]) -> list[Message]:
        msgs = validate_messages(messages)
        if self.system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    def _render(self, msgs: list[Message], add_generation_prompt: bool) -> str:
        variables: dict[str, Any] = dict(self._tok.special_tokens_map)
        variables["default_system_prompt"] = self.system_prompt or ""
        if self.date_string is not None:
            variables["date_string"] = self.date_string
        try:
            return self._template.render(
                messages=msgs,
                tools=None,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **variables,
            )
        except jinja2.TemplateError as exc:
            raise ChatError(f"the chat template refused these messages: {exc}") from None

    def render(
        self, messages: str | bytes | Sequence[Any], add_generation_prompt: bool = True
    ) -> str:
        """The prompt text, as `apply_chat_template(messages, tokenize=False, ...)` renders it."""
        return self._render(self._prepare(messages), add_generation_prompt)

    # ---- encoding ---------------------------------------------------------------------------
    def encode_messages(
        self, messages: str | bytes | Sequence[Any], add_generation_prompt: bool = True
    ) -> list[int]:
        """Prompt ids: Hugging Face's for benign content; message content never becomes an added
        token. BOS as the model expects (template's for Llama, tokenizer's for Tulu, none for Qwen).
        """
        msgs = self._prepare(messages)
        items = self._segments(msgs, add_generation_prompt)
        ids: list[int] = []
        text_runs = [x for x in items if isinstance(x, str)]
        encoded = iter(self._plain.encode_batch(text_runs, add_special_tokens=False))
        for x in items:
            ids.extend(next(encoded).ids if isinstance(x, str) else [x])
        if self.spec.tokenizer.add_special_tokens:
            ids = [*self._prefix, *ids, *self._suffix]
        return self._dedup_bos(ids)

    def encode_text(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of a raw (possibly already templated) prompt: special-token strings ARE parsed, the
        tokenizer adds its special tokens, and a doubled leading BOS is collapsed to one."""
        enc = self._backend.encode(text, add_special_tokens=add_special_tokens)
        return self._dedup_bos(enc.ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`, without Hugging Face's clean-up of spaces (exact)."""
        return self._backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # ---- internals --------------------------------------------------------------------------
    def _dedup_bos(self, ids: list[int]) -> list[int]:
        bos = self.spec.bos_token_id
        n = 0
        while bos is not None and n + 1 < len(ids) and ids[n] == bos and ids[n + 1] == bos:
            n += 1
        return ids[n:]

    def _post_processor_ids(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer's post-processor puts before and after a single sequence."""
        probe = "a"
        bare = self._backend.encode(probe, add_special_tokens=False).ids
        full = self._backend.encode(probe, add_special_tokens=True).ids
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return full[:i], full[i + len(bare) :]
        raise RuntimeError(f"{self.tokenizer_dir}: cannot locate the post-processor's tokens")

    def _segments(self, msgs: list[Message], add_generation_prompt: bool) -> list[str | int]:
        """The rendered prompt as runs of ordinary text (str) and template added-token ids (int)."""
        rendered = self._render(msgs, add_generation_prompt)
        nonce = secrets.token_hex(8)
        marked = [
            {"role": m["role"], "content": f"\ue000{nonce}:{i}\ue001"} for i, m in enumerate(msgs)
        ]
        skeleton = self._render(marked, add_generation_prompt)
        parts = re.split(f"\ue000{nonce}:(\\d+)\ue001", skeleton)
        pieces, order = parts[0::2], [int(i) for i in parts[1::2]]
        items: list[str | int] = []
        pos = 0
        for k, piece in enumerate(pieces):
            if not rendered.startswith(piece, pos):
                raise self._unmappable()
            items.extend(self._split_added(piece))
            pos += len(piece)
            if k == len(order):
                break
            content = self._content_at(rendered, pos, msgs[order[k]]["content"], pieces[k + 1])
            items.append(content)
            pos += len(content)
        if pos != len(rendered):
            raise self._unmappable()
        merged: list[str | int] = []
        for x in items:
            if isinstance(x, str) and merged and isinstance(merged[-1], str):
                merged[-1] += x
            elif x != "":
                merged.append(x)
        return merged

    def _content_at(self, rendered: str, pos: int, content: str, following: str) -> str:
        """How the template wrote `content` at `pos`: verbatim or trimmed (Jinja `trim`)."""
        for candidate in (content, content.strip()):
            if rendered.startswith(candidate + following, pos):
                return candidate
        raise self._unmappable()

    def _unmappable(self) -> ChatError:
        return ChatError(
            f"{self.spec.name}: the chat template transforms message content in a way tritonkit "
            "cannot isolate safely (only verbatim or trimmed content is supported)"
        )

    def _split_added(self, piece: str) -> list[str | int]:
        """Template text split into ordinary text and the added tokens the tokenizer matches."""
        cached = self._piece_cache.get(piece)
        if cached is not None:
            return cached
        enc = self._backend.encode(piece, add_special_tokens=False)
        out: list[str | int] = []
        pos = 0
        for tid, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            if tid in self._added_ids and piece[start:end] == self._tok.convert_ids_to_tokens(tid):
                out.extend([piece[pos:start], tid])
                pos = end
        out.append(piece[pos:])
        if len(self._piece_cache) < 4096:
            self._piece_cache[piece] = out
        return out


def _without_added_tokens(tok: Tokenizer) -> Tokenizer:
    """`tok`'s pipeline (shared model, no copy) without its added tokens: everything is plain text."""
    plain = Tokenizer(tok.model)
    plain.normalizer = tok.normalizer
    plain.pre_tokenizer = tok.pre_tokenizer
    plain.decoder = tok.decoder
    return plain
