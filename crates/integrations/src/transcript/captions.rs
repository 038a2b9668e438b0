//! Caption tracks as YouTube serves them, and their cleaning to plain text.
//!
//! Three shapes come back from `/api/timedtext`, depending on `fmt`:
//!
//! - JSON3 (`fmt=json3`): `{"events": [{"tStartMs", "dDurationMs", "segs":
//!   [{"utf8": "…"}]}]}`; automatic (ASR) tracks carry one word per seg and
//!   `"aAppend": 1` events holding only a line break.
//! - srv1, the default XML: `<transcript><text start="…" dur="…">…</text>`, whose
//!   text is escaped twice (`I&amp;#39;m` for "I'm") and may hold escaped
//!   `<font>` markup.
//! - srv3, XML with `<timedtext><body><p t="…" d="…"><s>…</s></p>`.
//!
//! [`parse_track`] reads any of them into cues; [`clean`] turns cues into text
//! someone can read or summarise.

use serde::Deserialize;

use crate::markup::{self, Token};

/// Reads a caption track in any of the shapes above into its cues' text, in
/// order. `Err` when the body is neither JSON3 nor caption XML.
pub fn parse_track(body: &str) -> Result<Vec<String>, String> {
    let trimmed = body.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        parse_json3(trimmed)
    } else if trimmed.starts_with('<') {
        Ok(parse_xml(trimmed))
    } else if trimmed.is_empty() {
        Ok(Vec::new())
    } else {
        Err("the caption track is neither JSON3 nor XML".into())
    }
}

#[derive(Deserialize)]
struct Json3 {
    #[serde(default)]
    events: Vec<Json3Event>,
}

#[derive(Deserialize)]
struct Json3Event {
    #[serde(default)]
    segs: Vec<Json3Seg>,
}

#[derive(Deserialize)]
struct Json3Seg {
    #[serde(default)]
    utf8: String,
}

/// JSON3's events as cues; events with no text (window definitions, the
/// line-break appends of automatic captions) are dropped.
pub fn parse_json3(body: &str) -> Result<Vec<String>, String> {
    let track: Json3 =
        serde_json::from_str(body).map_err(|e| format!("unreadable JSON3 caption track: {e}"))?;
    Ok(track
        .events
        .into_iter()
        .map(|event| event.segs.into_iter().map(|s| s.utf8).collect::<String>())
        .filter(|text| !text.trim().is_empty())
        .collect())
}

/// srv1's `<text>` and srv3's `<p>` elements as cues, markup removed and
/// character references decoded (twice: srv1 escapes them twice).
pub fn parse_xml(body: &str) -> Vec<String> {
    let mut cues = Vec::new();
    let mut current: Option<(String, String)> = None; // element name, text so far
    for token in markup::tokens(body) {
        match token {
            Token::Start {
                name, self_closing, ..
            } if current.is_none() && !self_closing && (name == "text" || name == "p") => {
                current = Some((name.to_string(), String::new()));
            }
            Token::Start { name, .. } if name.eq_ignore_ascii_case("br") => {
                if let Some((_, text)) = current.as_mut() {
                    text.push('\n');
                }
            }
            Token::Text(raw) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&markup::decode_entities(raw));
                }
            }
            Token::End { name } if current.as_ref().is_some_and(|(open, _)| open == name) => {
                if let Some((_, text)) = current.take() {
                    // The second level: what was escaped inside the text.
                    let text = strip_markup_keeping_lines(&markup::decode_entities(&text));
                    if !text.trim().is_empty() {
                        cues.push(text);
                    }
                }
            }
            _ => {}
        }
    }
    cues
}

/// Drops tags (`<font color="#E5E5E5">`, `<i>`) but keeps line breaks.
fn strip_markup_keeping_lines(text: &str) -> String {
    if !text.contains('<') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for token in markup::tokens(text) {
        match token {
            Token::Text(t) => out.push_str(t),
            Token::Start { name, .. } if name.eq_ignore_ascii_case("br") => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// Cues to readable text: line breaks within and between cues joined with
/// spaces, whitespace collapsed, sound annotations (`[Music]`, `(applause)`,
/// `♪♪`) dropped, and the duplicates of rolling captions removed — a line equal
/// to one of the two before it (two-line captions scroll up one line at a time),
/// or a line that only grows the one before it ("so" → "so what" → "so what
/// now").
pub fn clean(cues: &[String]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for cue in cues {
        for line in cue.split('\n') {
            let line = markup::collapse_whitespace(line);
            if line.is_empty() || is_annotation(&line) {
                continue;
            }
            let len = lines.len();
            if lines[len.saturating_sub(2)..].contains(&line) {
                continue;
            }
            if let Some(last) = lines.last_mut() {
                // Grows by whole words: "the" → "them" is a new line, not growth.
                if line.len() > last.len()
                    && line.starts_with(last.as_str())
                    && line[last.len()..].starts_with(' ')
                {
                    *last = line;
                    continue;
                }
            }
            lines.push(line);
        }
    }
    lines.join(" ")
}

fn is_annotation(line: &str) -> bool {
    let bracketed = |open: char, close: char| {
        line.starts_with(open)
            && line.ends_with(close)
            && !line[1..line.len() - 1].contains([open, close])
    };
    bracketed('[', ']')
        || bracketed('(', ')')
        || line
            .chars()
            .all(|c| c == '♪' || c == '♫' || c.is_whitespace())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_json3_including_asr_word_segments() {
        let body = r#"{"wireMagic":"pb3","pens":[{}],"wsWinStyles":[{}],"wpWinPositions":[{}],"events":[
            {"tStartMs":0,"dDurationMs":5000,"id":1,"wpWinPosId":1,"wsWinStyleId":1},
            {"tStartMs":160,"dDurationMs":4400,"wWinId":1,"segs":[{"utf8":"so","acAsrConf":0},{"utf8":" what","tOffsetMs":400,"acAsrConf":0}]},
            {"tStartMs":2800,"wWinId":1,"aAppend":1,"segs":[{"utf8":"\n"}]},
            {"tStartMs":2810,"dDurationMs":3000,"wWinId":1,"segs":[{"utf8":"now"}]}]}"#;
        assert_eq!(parse_track(body).unwrap(), strings(&["so what", "now"]));
        assert!(parse_track("{not json").is_err());
        assert!(parse_track(r#"{"wireMagic":"pb3"}"#).unwrap().is_empty());
    }

    #[test]
    fn reads_srv1_with_its_double_escaping() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="0.43" dur="3.2">I&amp;#39;m &amp;quot;fine&amp;quot;
thanks</text><text start="3.6" dur="1">&lt;font color=&quot;#E5E5E5&quot;&gt;Tom &amp;amp; Jerry&lt;/font&gt;</text><text start="5" dur="1"></text></transcript>"#;
        assert_eq!(
            parse_track(body).unwrap(),
            strings(&["I'm \"fine\"\nthanks", "Tom & Jerry"])
        );
    }

    #[test]
    fn reads_srv3_paragraphs_and_spans() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?><timedtext format="3"><head><ws id="0"/></head><body><p t="1200" d="3000" w="1"><s ac="0">so</s><s t="320" ac="0"> what</s></p><p t="4200" d="1000">line<br/>two</p></body></timedtext>"#;
        assert_eq!(
            parse_track(body).unwrap(),
            strings(&["so what", "line\ntwo"])
        );
    }

    #[test]
    fn cleaning_joins_lines_and_removes_rolling_duplicates() {
        let rolling = strings(&[
            "[Music]",
            "hey everyone welcome back",
            "hey everyone welcome back\nto the channel",
            "to the channel\ntoday we're talking",
            "today we're talking about\nbody doubling",
            "♪♪",
            "(applause)",
            "body doubling   works",
        ]);
        assert_eq!(
            clean(&rolling),
            "hey everyone welcome back to the channel today we're talking about body doubling works"
        );
        assert_eq!(clean(&strings(&["the", "them"])), "the them");
        assert_eq!(
            clean(&strings(&["yes", "no", "yes"])),
            "yes no",
            "a repeat of the line before last is rolling"
        );
        assert_eq!(clean(&strings(&["a", "b", "c", "a"])), "a b c a");
        assert_eq!(clean(&[]), "");
        assert_eq!(
            clean(&strings(&["[Music] and then"])),
            "[Music] and then",
            "only whole-line annotations go"
        );
    }
}
