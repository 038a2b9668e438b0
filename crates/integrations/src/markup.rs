//! Just enough HTML and XML reading to pull text out of two known page shapes:
//! DuckDuckGo's result page and YouTube's caption tracks.
//!
//! This is not a general HTML parser and does not try to be one: it splits markup
//! into start tags, end tags and text, skips comments, doctypes and the content of
//! `<script>` and `<style>`, reads attributes, and decodes character references.
//! The callers know which elements they want and look only at those; anything
//! unexpected is text or ignored, never a panic. (A real parser such as `scraper`
//! would be sturdier against layout changes; see the crate's README note.)

use std::borrow::Cow;

/// One piece of markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `<name attrs…>`; `attrs` is the raw text after the name.
    Start {
        name: &'a str,
        attrs: &'a str,
        self_closing: bool,
    },
    /// `</name>`.
    End { name: &'a str },
    /// Text between tags, with character references still encoded.
    Text(&'a str),
}

/// Splits `markup` into [`Token`]s.
pub(crate) fn tokens(markup: &str) -> Tokens<'_> {
    Tokens {
        rest: markup,
        raw_text_until: None,
    }
}

pub(crate) struct Tokens<'a> {
    rest: &'a str,
    /// Inside `<script>` or `<style>`: everything up to this closing tag is text
    /// nobody wants, skipped whole so that a `<` in a script is not read as a tag.
    raw_text_until: Option<&'static str>,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            if let Some(close) = self.raw_text_until.take() {
                let end = find_ignore_case(self.rest, close).unwrap_or(self.rest.len());
                self.rest = &self.rest[end..];
                continue;
            }
            if !self.rest.starts_with('<') {
                let end = self.rest.find('<').unwrap_or(self.rest.len());
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                return Some(Token::Text(text));
            }
            if let Some(after) = self.rest.strip_prefix("<!--") {
                let end = after.find("-->").map_or(after.len(), |i| i + 3);
                self.rest = &after[end..];
                continue;
            }
            if self.rest.starts_with("<!") || self.rest.starts_with("<?") {
                let end = self.rest.find('>').map_or(self.rest.len(), |i| i + 1);
                self.rest = &self.rest[end..];
                continue;
            }
            let Some(tag_end) = tag_end(self.rest) else {
                // An unclosed `<` at the very end: the rest is text.
                let text = self.rest;
                self.rest = "";
                return Some(Token::Text(text));
            };
            let inner = &self.rest[1..tag_end];
            let is_end = inner.starts_with('/');
            let body = inner.trim_start_matches('/');
            let name_end = body
                .find(|c: char| c.is_whitespace() || c == '/')
                .unwrap_or(body.len());
            let name = &body[..name_end];
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                // `a < b` in text: not a tag after all. Only the `<` is consumed.
                self.rest = &self.rest[1..];
                return Some(Token::Text("<"));
            }
            self.rest = &self.rest[tag_end + 1..];
            if is_end {
                return Some(Token::End { name });
            }
            let attrs = body[name_end..].trim();
            let self_closing = attrs.ends_with('/');
            let attrs = attrs.trim_end_matches('/').trim_end();
            if name.eq_ignore_ascii_case("script") && !self_closing {
                self.raw_text_until = Some("</script");
            } else if name.eq_ignore_ascii_case("style") && !self_closing {
                self.raw_text_until = Some("</style");
            }
            return Some(Token::Start {
                name,
                attrs,
                self_closing,
            });
        }
    }
}

/// The index of the `>` that ends the tag starting at `markup[0]`, skipping any
/// `>` inside quoted attribute values.
fn tag_end(markup: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in markup.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            // A new tag opening before this one closed: this `<` was text.
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The value of attribute `name` in a tag's raw attribute text, decoded.
pub(crate) fn attr<'a>(attrs: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let end = body.find(q).unwrap_or(body.len());
                    (&body[..end], body.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            rest = remaining;
            value
        } else {
            if key.is_empty() {
                // A stray character that is neither key nor `=`: skip it.
                let skip = rest.chars().next().map_or(0, char::len_utf8);
                rest = &rest[skip..];
                continue;
            }
            ""
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value));
        }
    }
}

/// Whether the tag's `class` attribute lists `class` as one of its names.
pub(crate) fn has_class(attrs: &str, class: &str) -> bool {
    attr(attrs, "class").is_some_and(|value| value.split_whitespace().any(|c| c == class))
}

/// Decodes character references: the named ones that occur in practice, and every
/// numeric one. Unknown names are left as written; a reference to an invalid code
/// point becomes U+FFFD.
pub(crate) fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let candidate = &rest[amp + 1..];
        // The longest reference we know is short; a `;` further off is not ours.
        let semi = candidate.char_indices().take(12).find(|&(_, c)| c == ';');
        let decoded =
            semi.and_then(|(end, _)| decode_reference(&candidate[..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &candidate[end + 1..];
            }
            None => {
                out.push('&');
                rest = candidate;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        return Some(char::from_u32(code).unwrap_or('\u{FFFD}'));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "times" => '×',
        _ => return None,
    })
}

/// Runs of whitespace (line breaks included) become one space; ends are trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of a markup fragment: tags dropped, references decoded, whitespace
/// collapsed. `<br>` counts as a space.
pub(crate) fn text_of(fragment: &str) -> String {
    let mut text = String::new();
    for token in tokens(fragment) {
        match token {
            Token::Text(t) => text.push_str(&decode_entities(t)),
            Token::Start { name, .. } if name.eq_ignore_ascii_case("br") => text.push(' '),
            _ => {}
        }
    }
    collapse_whitespace(&text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_text() {
        let got: Vec<_> =
            tokens(r#"<a class="x" href='/l/?a=1&amp;b=2'>Hi <b>there</b></a><br/>"#).collect();
        assert_eq!(
            got,
            vec![
                Token::Start {
                    name: "a",
                    attrs: r#"class="x" href='/l/?a=1&amp;b=2'"#,
                    self_closing: false
                },
                Token::Text("Hi "),
                Token::Start {
                    name: "b",
                    attrs: "",
                    self_closing: false
                },
                Token::Text("there"),
                Token::End { name: "b" },
                Token::End { name: "a" },
                Token::Start {
                    name: "br",
                    attrs: "",
                    self_closing: true
                },
            ]
        );
    }

    #[test]
    fn skips_comments_doctypes_and_scripts() {
        let markup = "<!DOCTYPE html><!-- <a> --><script>if (a<b) { x('</div>') }</script><style>a>b{}</style><p>ok</p>";
        let text: Vec<_> = tokens(markup)
            .filter_map(|t| match t {
                Token::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(text, vec!["ok"]);
    }

    #[test]
    fn a_lone_angle_bracket_is_text() {
        assert_eq!(text_of("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
        assert_eq!(text_of("trailing <"), "trailing <");
    }

    #[test]
    fn quoted_angle_brackets_do_not_end_a_tag() {
        let got: Vec<_> = tokens(r#"<img alt="a > b" src=x>after"#).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Token::Text("after"));
        if let Token::Start { attrs, .. } = got[0] {
            assert_eq!(attr(attrs, "alt").as_deref(), Some("a > b"));
            assert_eq!(attr(attrs, "src").as_deref(), Some("x"));
        }
    }

    #[test]
    fn reads_attributes_in_every_quoting_style() {
        let attrs = r#"rel=nofollow class="result__a  big" data-x='1' disabled href="//duckduckgo.com/l/?uddg=x&amp;rut=y""#;
        assert_eq!(attr(attrs, "rel").as_deref(), Some("nofollow"));
        assert_eq!(attr(attrs, "data-x").as_deref(), Some("1"));
        assert_eq!(attr(attrs, "disabled").as_deref(), Some(""));
        assert_eq!(
            attr(attrs, "HREF").as_deref(),
            Some("//duckduckgo.com/l/?uddg=x&rut=y")
        );
        assert_eq!(attr(attrs, "missing"), None);
        assert!(has_class(attrs, "result__a"));
        assert!(has_class(attrs, "big"));
        assert!(!has_class(attrs, "result"));
    }

    #[test]
    fn decodes_named_and_numeric_references() {
        assert_eq!(
            decode_entities(
                "Tom &amp; Jerry&#39;s &#x27;best&#X27; &quot;&lt;b&gt;&quot; &hellip;"
            ),
            "Tom & Jerry's 'best' \"<b>\" …"
        );
        assert_eq!(decode_entities("&#128512;"), "😀");
        assert_eq!(decode_entities("&#xD800;"), "\u{FFFD}");
        assert_eq!(decode_entities("AT&T &unknown; & ;"), "AT&T &unknown; & ;");
        assert!(matches!(decode_entities("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn text_of_drops_tags_and_collapses_space() {
        assert_eq!(
            text_of(
                "A language empowering <b>everyone</b>\n   to build&nbsp;reliable<br>software."
            ),
            "A language empowering everyone to build reliable software."
        );
    }
}
