"""Text cleaning a tokenizer does in Python before its vocabulary applies, which a `tokenizers`
pipeline cannot express; named by the manifest's `text.clean`.

"openclip": open_clip's SimpleTokenizer default (`_clean_lower` in open_clip/tokenizer.py): ftfy's
fix_text (mojibake, curly quotes, ligatures, full-width forms, control characters, NFC), HTML entities
unescaped twice, whitespace folded as Python's str.split() sees it, then Python's lower() (which,
unlike the `tokenizers` Lowercase step, writes a word-final Greek sigma as ς). Needs `ftfy`, imported
only for the models that ask for it (pip install 'visual-search[openclip]').
"""

from __future__ import annotations

import html
from collections.abc import Callable

from visual_search.errors import ModelError

CLEANS = ("none", "openclip")


def cleaner(name: str) -> Callable[[str], str] | None:
    """The cleaning function named `name`; None for "none". ModelError if its library is missing."""
    if name == "none":
        return None
    if name != "openclip":
        raise ModelError(f"unknown text cleaning {name!r}")
    try:
        import ftfy
    except ImportError:
        raise ModelError(
            "this model's tokenizer cleans text with ftfy, which is not installed: "
            "pip install 'visual-search[openclip]'"
        ) from None

    def openclip_clean(text: str) -> str:
        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        return " ".join(text.split()).lower()

    return openclip_clean
