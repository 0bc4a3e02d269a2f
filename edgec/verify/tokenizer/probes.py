"""The texts a tokenizer is probed with beyond the eval data.

Eval texts only show the cases the user's data happens to contain; a deployed tokenizer
also meets Unicode forms, scripts, control characters and lengths that data never
held. The probes are a fixed list of such awkward strings; the generated texts come
from hypothesis, derandomized so every run compares the same strings.
"""

from __future__ import annotations

from edgec_runtime.paths import cache_root

GENERATED_EXAMPLES = 150

LONG = "an unexpectedly moving story about families and memory " * 60
PROBES = [
    "",
    " ",
    "   \t\n  ",
    "a gorgeous, witty, seductive movie.",
    "A GORGEOUS, Witty, SeDuCtIvE Movie.",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 cr\u00e8me br\u00fbl\u00e9e",  # NFC accents
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",  # NFD: combining marks
    "\ufb01ne \u2460 \uff21\uff22\uff23 \u00bd x\u00b2",  # NFKC-sensitive: ligature, circled, fullwidth
    "\u00c5ngstr\u00f6m \u212bngstr\u00f6m",  # precomposed vs Kelvin/Angstrom sign
    "Stra\u00dfe \u0130stanbul \u0131 \u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
    "\u8fd9\u90e8\u7535\u5f71\u975e\u5e38\u597d\u770b \u6620\u753b\u306f\u3068\u3066\u3082\u826f\u304b\u3063\u305f \uc88b\uc740 \uc601\ud654",
    "\u0645\u0645\u062a\u0627\u0632 \u05d8\u05d5\u05d1 \u0905\u091a\u094d\u091b\u093e \u0e14\u0e35\u0e21\u0e32\u0e01",
    "great movie \U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f",
    "zero\u200bwidth\u200cjoin\u200dnon\ufeffbreak\u2060",
    "control\x00chars\x01\x07\x1b[0m\x7f\x85 and\u2028line\u2029breaks\r\n",
    "soft\u00adhyphen non\u00a0breaking\u2003em\u3000ideographic",
    "<p>Great <b>movie</b>!</p><br/>&amp; &lt;3 &#39;quoted&#39; <script>x()</script>",
    "see https://example.com/path?q=1&lang=en#frag or mail me@example.org",
    "3.14159 1,000,000 -42 1e-9 0x1F 12:30 2026-11-22 $19.99 50%",
    "[CLS] [SEP] [PAD] [UNK] [MASK] <s> </s> <pad> <unk> <mask>",
    "don't won't it's l'amour O'Neil rock'n'roll",
    '!!!??? ... --- *** ### @@@ ~~~ ``` """',
    "a" * 300,
    LONG,
    " ".join(["word"] * 2000),
]
PAIR_PROBES = [
    ("", ""),
    ("a short premise.", ""),
    ("", "a short hypothesis."),
    ("The movie was great.", "Was the movie good?"),
    (LONG, "short second text"),
    ("short first text", LONG),
    (LONG, LONG[::-1]),
    ("caf\u00e9 \U0001f600", "\u8fd9\u90e8\u7535\u5f71 zero\u200bwidth"),
]


def probe_inputs(text_pair: bool) -> tuple[list[str], list[str] | None]:
    """(texts, pairs) to probe with: the single probes, or for a pair model the pair
    probes plus a few single texts with an empty second text."""
    if not text_pair:
        return list(PROBES), None
    single = [(t, "") for t in PROBES[:4]]
    both = [*PAIR_PROBES, *single]
    return [a for a, _ in both], [b for _, b in both]


def generated_texts(n: int = GENERATED_EXAMPLES, pairs: bool = False) -> list | None:
    """Arbitrary Unicode strings from hypothesis, the same on every run (derandomize);
    None when hypothesis is not installed."""
    try:
        from hypothesis import HealthCheck, Phase, given, settings
    except ImportError:
        return None
    from hypothesis import configuration
    from hypothesis import strategies as st

    collected: list = []
    text = st.text(max_size=300)
    strategy = st.tuples(text, text) if pairs else text

    @settings(
        derandomize=True,
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value):
        collected.append(value)

    # hypothesis caches Unicode tables under ./.hypothesis; keep the user's folder clean
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(cache_root() / "hypothesis")
    try:
        collect()
    finally:
        configuration.set_hypothesis_home_dir(previous)
    return collected


def generated_inputs(n: int, text_pair: bool) -> tuple[list[str], list[str] | None] | None:
    """Generated strings as (texts, pairs) like the other inputs; None without hypothesis."""
    generated = generated_texts(n, pairs=text_pair) if n else []
    if generated is None:
        return None
    if not text_pair:
        return list(generated), None
    return [a for a, _ in generated], [b for _, b in generated]
