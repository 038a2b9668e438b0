//! How much an SMS costs, and how to make a reply fit a budget.
//!
//! Every outbound text is billed and delivered per *segment*, and a reply that
//! silently grows from one segment to three triples its cost and arrives on some
//! phones as three separate bubbles — noise for a reader who is easily
//! derailed. So the assistant sizes replies with [`segments`] and trims
//! them with [`fit`] before they are sent.
//!
//! The rules follow GSM 03.38 / 3GPP TS 23.038 as carriers and Twilio apply them:
//!
//! * A message whose every character is in the GSM-7 alphabet travels as 7-bit
//!   septets: 160 in a single segment, 153 per segment once it is split (the
//!   other 7 carry the concatenation header). Characters from the extension table
//!   (`^ { } \ [ ~ ] | €` and form feed) are an escape plus a septet, so they
//!   cost 2, and a segment boundary never falls between the two.
//! * One character outside that alphabet — an emoji, a curly quote, "…" —
//!   switches the *whole* message to UCS-2 (in practice UTF-16): 70 code units
//!   in one segment, 67 per segment when split. Characters outside the Basic
//!   Multilingual Plane (most emoji) are a surrogate pair, cost 2 units, and are
//!   never split across segments.
//!
//! What this module does not model: Twilio's optional "smart encoding" (which
//! swaps curly quotes for straight ones before counting), national language
//! shift tables, and grapheme clusters — a multi-code-point emoji such as a
//! family or a flag may straddle a segment boundary. Concatenating phones
//! reassemble it, so the count stays right; only the split point is cosmetic.

/// The alphabet a message travels in; it decides how many characters fit in a
/// segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, 7 bits per character.
    Gsm7,
    /// UCS-2 / UTF-16, 16 bits per code unit; used as soon as one character is
    /// outside GSM-7.
    Ucs2,
}

/// Septets in a single, unsplit GSM-7 message.
const GSM7_SINGLE: usize = 160;
/// Septets per segment of a concatenated GSM-7 message (7 go to the UDH).
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single, unsplit UCS-2 message.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per segment of a concatenated UCS-2 message.
const UCS2_PART: usize = 67;

/// Truncation marker for GSM-7 text: three full stops, because "…" is not in
/// GSM-7 and would turn a 160-character budget into a 70-character one.
const GSM7_ELLIPSIS: &str = "...";
/// Truncation marker for text that is UCS-2 anyway: one code unit instead of three.
const UCS2_ELLIPSIS: &str = "…";

/// The GSM 03.38 basic character set outside ASCII. Every printable ASCII
/// character except the backtick is in GSM-7 (a few via the extension table),
/// so only these need a lookup; the full table lives in the tests, which check
/// [`gsm7_septets`] against it character by character.
const GSM7_BASIC_NON_ASCII: &str = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà";

/// Septets `c` costs in GSM-7, or `None` when it cannot be sent in GSM-7 at all.
///
/// Written as a match rather than a search of the whole table because it runs
/// for every character of every outbound message, several times when [`fit`]
/// trims.
fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // The extension table: ESC plus a septet.
        '\u{000C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        '`' => None,
        '\n' | '\r' | ' '..='~' => Some(1),
        c if GSM7_BASIC_NON_ASCII.contains(c) => Some(1),
        _ => None,
    }
}

/// The encoding a carrier will use for `text`.
///
/// Empty text is GSM-7: nothing in it forces UCS-2.
pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// How many segments `text` is billed and delivered as.
///
/// An empty body counts as one segment, as Twilio counts it: a message is
/// still sent and still billed even with nothing in it, so budgeting it as
/// zero would under-count.
pub fn segments(text: &str) -> usize {
    match encoding(text) {
        // Every char is known to be GSM-7 here, so the fallback is never used;
        // 2 is the safe over-estimate if that ever stops being true.
        Encoding::Gsm7 => pack(
            text.chars().map(|c| gsm7_septets(c).unwrap_or(2)),
            GSM7_SINGLE,
            GSM7_PART,
        ),
        Encoding::Ucs2 => pack(text.chars().map(char::len_utf16), UCS2_SINGLE, UCS2_PART),
    }
}

/// Count segments by laying characters (given by their cost in septets or
/// code units) into segments the way a sender splits them: a character that
/// would straddle a boundary moves whole to the next segment. That is why a
/// message can need one more segment than `ceil(total / part)` suggests.
fn pack(costs: impl Iterator<Item = usize> + Clone, single: usize, part: usize) -> usize {
    if costs.clone().sum::<usize>() <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > part {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

/// `text` unchanged if it fits in `max_segments`; otherwise as much of it as
/// fits, cut at a word boundary, with an ellipsis appended.
///
/// The ellipsis is "..." when the kept text is GSM-7 — so trimming never flips
/// a GSM-7 message to UCS-2 and more than halves its room — and "…" when the
/// kept text is UCS-2 anyway. When not even the first word fits (a long URL),
/// the cut falls between characters instead. A `max_segments` of 0 is treated
/// as 1: every message, even an empty one, takes at least one segment.
pub fn fit(text: &str, max_segments: usize) -> String {
    let max_segments = max_segments.max(1);
    if segments(text) <= max_segments {
        return text.to_owned();
    }

    // No character costs less than one septet or code unit, so a prefix of
    // more characters than this cannot fit; skipping those keeps the search
    // short even for a long input.
    let most_chars = max_segments * GSM7_SINGLE;
    let chars: Vec<(usize, char)> = text.char_indices().take(most_chars + 1).collect();
    // Byte offsets where a prefix may end, longest first so the first fit is
    // the best one. A word ends where whitespace follows a non-space character.
    let char_ends: Vec<usize> = chars
        .iter()
        .take(most_chars)
        .map(|&(i, c)| i + c.len_utf8())
        .rev()
        .collect();
    let word_ends: Vec<usize> = chars
        .windows(2)
        .filter(|pair| !pair[0].1.is_whitespace() && pair[1].1.is_whitespace())
        .map(|pair| pair[1].0)
        .rev()
        .collect();

    let fitted = |ends: &[usize]| {
        ends.iter()
            .find_map(|&end| with_ellipsis(&text[..end], max_segments))
    };
    fitted(&word_ends)
        .or_else(|| fitted(&char_ends))
        // Unreachable in practice: one character plus "..." always fits in a
        // segment. Kept so the function is total without a panic.
        .unwrap_or_else(|| GSM7_ELLIPSIS.to_owned())
}

/// `kept` plus the right ellipsis, if that fits in `max_segments` and keeps
/// some text. Trailing spaces and clause punctuation are dropped first so the
/// result reads "call the dentist..." rather than "call the dentist, ...".
fn with_ellipsis(kept: &str, max_segments: usize) -> Option<String> {
    let kept = kept.trim_end_matches(|c: char| c.is_whitespace() || ",;:-–—".contains(c));
    if kept.is_empty() {
        return None;
    }
    let ellipsis = match encoding(kept) {
        Encoding::Gsm7 => GSM7_ELLIPSIS,
        Encoding::Ucs2 => UCS2_ELLIPSIS,
    };
    let candidate = format!("{kept}{ellipsis}");
    (segments(&candidate) <= max_segments).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm(n: usize) -> String {
        "a".repeat(n)
    }

    /// GSM 03.38 basic character set, in table order, without the escape code.
    const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
        ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    /// GSM 03.38 extension table.
    const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

    #[test]
    fn septets_match_the_03_38_tables() {
        // The string continuation above eats the newline and the indentation.
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
        for c in (0..0x3000)
            .chain(0x1F300..0x1F700)
            .filter_map(char::from_u32)
        {
            let expected = if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm7_septets(c), expected, "{c:?} U+{:04X}", c as u32);
        }
        assert_eq!(gsm7_septets('€'), Some(2));
    }

    #[test]
    fn plain_gsm_boundaries() {
        for (len, expected) in [
            (0, 1),
            (1, 1),
            (160, 1),
            (161, 2),
            (306, 2),
            (307, 3),
            (459, 3),
            (460, 4),
        ] {
            assert_eq!(segments(&gsm(len)), expected, "{len} GSM chars");
        }
    }

    #[test]
    fn empty_text_is_one_gsm_segment() {
        assert_eq!(encoding(""), Encoding::Gsm7);
        assert_eq!(segments(""), 1);
    }

    #[test]
    fn gsm_specials_are_gsm() {
        let text = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\r\n";
        assert_eq!(encoding(text), Encoding::Gsm7);
    }

    #[test]
    fn extension_chars_count_double() {
        for ext in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{000C}'] {
            let s = ext.to_string();
            assert_eq!(encoding(&s), Encoding::Gsm7, "{ext:?}");
            // 80 extension chars = 160 septets: still one segment; one more char is two.
            assert_eq!(segments(&s.repeat(80)), 1, "{ext:?}");
            assert_eq!(segments(&format!("{}a", s.repeat(80))), 2, "{ext:?}");
        }
        assert_eq!(segments(&format!("{}€", gsm(158))), 1);
        assert_eq!(segments(&format!("{}€", gsm(159))), 2);
    }

    #[test]
    fn escape_pair_never_straddles_a_segment() {
        // 152 septets then a 2-septet char: it cannot share part one's last
        // septet, so moves whole to part two (153 + 2 → needs 2 parts, and the
        // padding shows when part two then fills up).
        let text = format!("{}€{}", gsm(152), gsm(152));
        // Naive count: 152 + 2 + 152 = 306 → 2 parts; real packing: 152 | 2+151 | 1.
        assert_eq!(segments(&text), 3);
    }

    #[test]
    fn one_emoji_flips_to_ucs2() {
        assert_eq!(encoding("done 👍"), Encoding::Ucs2);
        assert_eq!(
            encoding("it’s"),
            Encoding::Ucs2,
            "curly apostrophe is not GSM-7"
        );
        assert_eq!(encoding("…"), Encoding::Ucs2);
        assert_eq!(encoding("\t"), Encoding::Ucs2, "tab is not GSM-7");
        // 68 BMP chars + one 2-unit emoji = 70 units.
        assert_eq!(segments(&format!("{}👍", gsm(68))), 1);
        assert_eq!(segments(&format!("{}👍", gsm(69))), 2);
    }

    #[test]
    fn ucs2_boundaries() {
        let with = |n: usize| format!("é{}", "ж".repeat(n - 1));
        for (len, expected) in [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)] {
            assert_eq!(segments(&with(len)), expected, "{len} UCS-2 chars");
        }
    }

    #[test]
    fn surrogate_pair_never_straddles_a_segment() {
        // 66 units then an emoji: 66 + 2 > 67, so the emoji opens part two.
        let text = format!("ж{}👍{}", "a".repeat(65), "a".repeat(65));
        // Naive: 66 + 2 + 65 = 133 ≤ 134 → 2; packed: 66 | 2 + 65 = 67 → 2.
        assert_eq!(segments(&text), 2);
        let text = format!("ж{}👍{}", "a".repeat(65), "a".repeat(66));
        // Naive: 134 → 2; packed: 66 | 67 | 1 → 3.
        assert_eq!(segments(&text), 3);
    }

    #[test]
    fn segments_never_drop_as_text_grows() {
        let mut gsm_text = String::new();
        let mut ucs_text = String::from("ж");
        let (mut last_gsm, mut last_ucs) = (1, 1);
        for i in 0..1_000 {
            gsm_text.push(if i % 7 == 0 { '€' } else { 'x' });
            ucs_text.push(if i % 5 == 0 { '🙂' } else { 'y' });
            let (g, u) = (segments(&gsm_text), segments(&ucs_text));
            assert!(g >= last_gsm && u >= last_ucs, "at {i}");
            (last_gsm, last_ucs) = (g, u);
        }
    }

    #[test]
    fn fit_leaves_short_text_alone() {
        assert_eq!(
            fit("Parked in Not now. It'll wait.", 1),
            "Parked in Not now. It'll wait."
        );
        assert_eq!(fit(&gsm(160), 1), gsm(160));
        assert_eq!(fit("", 1), "");
    }

    #[test]
    fn fit_cuts_at_a_word_and_stays_gsm() {
        let text = "word ".repeat(40); // 200 chars
        let fitted = fit(&text, 1);
        assert!(fitted.ends_with("word..."), "{fitted}");
        assert_eq!(encoding(&fitted), Encoding::Gsm7);
        assert!(segments(&fitted) <= 1);
        // Whole words only: 31 × "word " = 155, minus the space, plus "..." = 157.
        assert_eq!(fitted.len(), 157);
    }

    #[test]
    fn fit_drops_dangling_punctuation() {
        let text = format!(
            "{}, and then something else that is long enough",
            "x".repeat(155)
        );
        assert_eq!(fit(&text, 1), format!("{}...", "x".repeat(155)));
    }

    #[test]
    fn fit_ucs2_uses_single_char_ellipsis() {
        let text = "🙂 yay ".repeat(30);
        let fitted = fit(&text, 1);
        assert!(fitted.ends_with('…'), "{fitted}");
        assert_eq!(segments(&fitted), 1);
    }

    #[test]
    fn fit_prefers_gsm_when_the_cut_removes_the_only_emoji() {
        let text = format!("{} 🙂", "word ".repeat(40));
        let fitted = fit(&text, 1);
        assert_eq!(encoding(&fitted), Encoding::Gsm7, "{fitted}");
        assert!(fitted.ends_with("..."));
    }

    #[test]
    fn fit_hard_cuts_one_long_word() {
        let url = format!("https://example.com/{}", "z".repeat(300));
        let fitted = fit(&url, 1);
        assert_eq!(fitted.len(), 160);
        assert!(fitted.ends_with("..."));
        let fitted = fit(&"ж".repeat(300), 2);
        assert_eq!(fitted.chars().count(), 134);
        assert!(fitted.ends_with('…'));
    }

    #[test]
    fn fit_zero_budget_means_one() {
        assert_eq!(segments(&fit(&gsm(500), 0)), 1);
    }

    #[test]
    fn fit_never_exceeds_budget_over_many_lengths() {
        let words = ["call", "the", "dentist", "{about}", "€5", "invoice", "walk"];
        let emoji_words = ["call", "🙂", "dentist", "café", "ok", "🧺"];
        for max in 1..=4 {
            for len in 0..150 {
                let gsm_text: String = (0..len)
                    .map(|i| words[i % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ");
                let fitted = fit(&gsm_text, max);
                assert!(segments(&fitted) <= max, "gsm len {len} max {max}");
                assert_eq!(encoding(&fitted), Encoding::Gsm7, "gsm len {len} max {max}");
                if segments(&gsm_text) <= max {
                    assert_eq!(fitted, gsm_text);
                } else {
                    assert!(fitted.ends_with("..."));
                    let kept = &fitted[..fitted.len() - 3];
                    assert!(gsm_text.starts_with(kept));
                    // Cut at a word: what follows the kept text is a space.
                    assert!(
                        gsm_text[kept.len()..].starts_with(' '),
                        "len {len} max {max}"
                    );
                }

                let ucs_text: String = (0..len)
                    .map(|i| emoji_words[i % emoji_words.len()])
                    .collect::<Vec<_>>()
                    .join(" ");
                let fitted = fit(&ucs_text, max);
                assert!(segments(&fitted) <= max, "ucs len {len} max {max}");
                if segments(&ucs_text) > max {
                    let kept = fitted.trim_end_matches(['…', '.']);
                    assert!(ucs_text.starts_with(kept), "ucs len {len} max {max}");
                }
            }
        }
    }
}
