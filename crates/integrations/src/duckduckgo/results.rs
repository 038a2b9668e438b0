//! Reading DuckDuckGo's HTML result page.
//!
//! The page (`html.duckduckgo.com/html/`) lists each result as
//!
//! ```html
//! <div class="result results_links results_links_deep web-result ">
//!   <div class="links_main links_deep result__body">
//!     <h2 class="result__title">
//!       <a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fexample.com%2F&amp;rut=…">Title</a>
//!     </h2>
//!     …
//!     <a class="result__snippet" href="…">Snippet with <b>bold</b> words</a>
//!   </div>
//! </div>
//! ```
//!
//! ads as the same with `result--ad` and a `/y.js` link, an empty search as a
//! `no-results` block, and a bot check as a page with an `anomaly-modal`. The
//! reader walks the markup once (with the crate's small tag reader) and keys on those class
//! names only, so unrelated layout changes do not break it; a page with none of
//! them is reported as unrecognised rather than read as "no results", so that a
//! redesign is noticed instead of silently answering nothing.

use reqwest::Url;

use crate::markup::{self, Token};
use crate::untrusted::UntrustedText;

/// One web result. Title and snippet come from whoever wrote the page:
/// [`UntrustedText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub title: UntrustedText,
    /// The result's own address, DuckDuckGo's redirect resolved.
    pub url: Url,
    /// May be empty.
    pub snippet: UntrustedText,
}

/// What a result page turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultsPage {
    /// Organic results in page order (ads dropped); empty when DuckDuckGo said
    /// it found nothing.
    Results(Vec<SearchResult>),
    /// A bot check instead of results.
    Challenge,
    /// Neither results, nor "no results", nor a bot check: the layout changed.
    Unrecognised,
}

/// Reads a result page; see the module docs.
pub fn parse_results_page(html: &str) -> ResultsPage {
    if is_challenge(html) {
        return ResultsPage::Challenge;
    }
    let mut reader = Reader::default();
    for token in markup::tokens(html) {
        reader.feed(token);
    }
    reader.finish_block();
    if reader.results.is_empty() && !reader.saw_no_results && !reader.saw_result_link {
        return ResultsPage::Unrecognised;
    }
    ResultsPage::Results(reader.results)
}

/// DuckDuckGo's bot check, whatever status it came with.
pub(crate) fn is_challenge(html: &str) -> bool {
    [
        "anomaly-modal",
        "challenge-form",
        "bots use DuckDuckGo",
        "/anomaly.js",
    ]
    .iter()
    .any(|marker| html.contains(marker))
}

/// Which text is being collected, until the end tag named `tag` closes it at
/// nesting `depth` of that tag.
enum Capture {
    Title {
        tag: String,
        depth: usize,
        href: String,
        text: String,
    },
    Snippet {
        tag: String,
        depth: usize,
        text: String,
    },
}

#[derive(Default)]
struct Block {
    ad: bool,
    title: Option<(String, String)>,
    snippet: Option<String>,
}

#[derive(Default)]
struct Reader {
    block: Option<Block>,
    capture: Option<Capture>,
    results: Vec<SearchResult>,
    saw_no_results: bool,
    saw_result_link: bool,
}

impl Reader {
    fn feed(&mut self, token: Token<'_>) {
        if let Some(capture) = self.capture.as_mut() {
            let (tag, depth, text) = match capture {
                Capture::Title {
                    tag, depth, text, ..
                }
                | Capture::Snippet { tag, depth, text } => (tag, depth, text),
            };
            let mut closed = false;
            match token {
                Token::Text(t) => text.push_str(t),
                Token::Start { name, .. } if name.eq_ignore_ascii_case("br") => text.push(' '),
                Token::Start {
                    name,
                    self_closing: false,
                    ..
                } if name.eq_ignore_ascii_case(tag) => *depth += 1,
                Token::End { name } if name.eq_ignore_ascii_case(tag) => {
                    if *depth == 0 {
                        closed = true;
                    } else {
                        *depth -= 1;
                    }
                }
                _ => {}
            }
            if closed {
                self.end_capture();
            }
            return;
        }
        let Token::Start {
            name,
            attrs,
            self_closing,
        } = token
        else {
            return;
        };
        if markup::has_class(attrs, "no-results") || markup::has_class(attrs, "result--no-result") {
            self.saw_no_results = true;
            return;
        }
        if name.eq_ignore_ascii_case("div") && markup::has_class(attrs, "result") {
            self.finish_block();
            self.block = Some(Block {
                ad: markup::has_class(attrs, "result--ad"),
                ..Block::default()
            });
            return;
        }
        if self_closing {
            return;
        }
        if markup::has_class(attrs, "result__a") {
            self.saw_result_link = true;
            // A second title in one block: markup without result wrappers.
            if self.block.as_ref().is_none_or(|b| b.title.is_some()) {
                self.finish_block();
                self.block = Some(Block::default());
            }
            self.capture = Some(Capture::Title {
                tag: name.to_string(),
                depth: 0,
                href: markup::attr(attrs, "href").unwrap_or_default().into_owned(),
                text: String::new(),
            });
        } else if markup::has_class(attrs, "result__snippet")
            && self.block.as_ref().is_some_and(|b| b.snippet.is_none())
        {
            self.capture = Some(Capture::Snippet {
                tag: name.to_string(),
                depth: 0,
                text: String::new(),
            });
        }
    }

    fn end_capture(&mut self) {
        let Some(block) = self.block.as_mut() else {
            self.capture = None;
            return;
        };
        match self.capture.take() {
            Some(Capture::Title { href, text, .. }) => block.title = Some((href, text)),
            Some(Capture::Snippet { text, .. }) => block.snippet = Some(text),
            None => {}
        }
    }

    fn finish_block(&mut self) {
        if self.capture.is_some() {
            // An element left open at the end of the page: keep what it held.
            self.end_capture();
        }
        let Some(block) = self.block.take() else {
            return;
        };
        let Some((href, title)) = block.title else {
            return;
        };
        if block.ad {
            return;
        }
        let Some(url) = resolve(&href) else { return };
        if self.results.iter().any(|r| r.url == url) {
            return;
        }
        let title = text(&title);
        if title.is_empty() {
            return;
        }
        self.results.push(SearchResult {
            title: UntrustedText::new(title),
            url,
            snippet: UntrustedText::new(text(&block.snippet.unwrap_or_default())),
        });
    }
}

/// Raw captured text (references still encoded, inner tags already dropped) as
/// plain text.
fn text(raw: &str) -> String {
    markup::text_of(raw)
}

/// A result link as the address it leads to: DuckDuckGo's `/l/?uddg=…`
/// redirect unwrapped, protocol-relative and relative links completed; ads
/// (`/y.js`) and anything but http(s) refused.
pub fn resolve(href: &str) -> Option<Url> {
    let href = href.trim();
    let absolute = if href.starts_with("//") {
        format!("https:{href}")
    } else if href.starts_with('/') {
        format!("https://duckduckgo.com{href}")
    } else {
        href.to_string()
    };
    let url = Url::parse(&absolute).ok()?;
    let on_duckduckgo = url
        .host_str()
        .is_some_and(|h| h == "duckduckgo.com" || h.ends_with(".duckduckgo.com"));
    let url = if on_duckduckgo {
        match url.path() {
            "/l/" | "/l" => {
                let target = url.query_pairs().find(|(k, _)| k == "uddg")?.1.into_owned();
                Url::parse(&target).ok()?
            }
            "/y.js" => return None,
            _ => url,
        }
    } else {
        url
    };
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn results(html: &str) -> Vec<SearchResult> {
        match parse_results_page(html) {
            ResultsPage::Results(results) => results,
            other => panic!("expected results, got {other:?}"),
        }
    }

    #[test]
    fn resolves_redirects_and_refuses_ads_and_scripts() {
        assert_eq!(
            resolve("//duckduckgo.com/l/?uddg=https%3A%2F%2Fwww.rust-lang.org%2Flearn%3Fa%3D1%26b%3D2&rut=abc").unwrap().as_str(),
            "https://www.rust-lang.org/learn?a=1&b=2"
        );
        assert_eq!(
            resolve("/l/?uddg=https%3A%2F%2Fexample.com%2F")
                .unwrap()
                .as_str(),
            "https://example.com/"
        );
        assert_eq!(
            resolve("https://example.org/page").unwrap().as_str(),
            "https://example.org/page"
        );
        assert_eq!(
            resolve("//duckduckgo.com/y.js?ad_domain=shop.example&u3=x"),
            None
        );
        assert_eq!(resolve("javascript:alert(1)"), None);
        assert_eq!(
            resolve("//duckduckgo.com/l/?uddg=javascript%3Aalert(1)"),
            None
        );
        assert_eq!(resolve("//duckduckgo.com/l/?rut=abc"), None);
        assert_eq!(resolve(""), None);
    }

    #[test]
    fn reads_result_blocks_and_skips_ads() {
        let html = r#"
          <div class="result results_links results_links_deep result--ad ">
            <h2 class="result__title"><a class="result__a" href="//duckduckgo.com/y.js?ad_domain=x">Buy now</a></h2>
            <a class="result__snippet" href="//duckduckgo.com/y.js?ad_domain=x">Ad</a>
          </div>
          <div class="result results_links results_links_deep web-result ">
            <div class="links_main links_deep result__body">
              <h2 class="result__title">
                <a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fchadd.org%2F&amp;rut=1">CHADD &#x27;Body&#x27; <b>Doubling</b> &amp; ADHD</a>
              </h2>
              <div class="result__extras"><div class="result__extras__url"><a class="result__url" href="x">chadd.org</a></div></div>
              <a class="result__snippet" href="//duckduckgo.com/l/?uddg=x">Working <b>alongside</b>
                 someone&nbsp;helps.</a>
              <div class="clear"></div>
            </div>
          </div>
          <div class="result results_links web-result"><h2><a class="result__a" href="https://example.com/no-snippet">No snippet here</a></h2></div>"#;
        let found = results(html);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].title.as_str(), "CHADD 'Body' Doubling & ADHD");
        assert_eq!(found[0].url.as_str(), "https://chadd.org/");
        assert_eq!(
            found[0].snippet.as_str(),
            "Working alongside someone helps."
        );
        assert_eq!(found[1].url.as_str(), "https://example.com/no-snippet");
        assert!(found[1].snippet.is_empty());
    }

    #[test]
    fn reads_flat_markup_and_drops_duplicates() {
        let html = r#"<a class="result__a" href="https://a.example/">A</a><a class="result__snippet">first</a>
                      <a class="result__a" href="https://b.example/">B</a><a class="result__snippet">second</a>
                      <a class="result__a" href="https://a.example/">A again</a>"#;
        let found = results(html);
        let urls: Vec<_> = found.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, vec!["https://a.example/", "https://b.example/"]);
        assert_eq!(found[1].snippet.as_str(), "second");
    }

    #[test]
    fn tells_no_results_from_challenges_and_redesigns() {
        let none = r#"<div class="result results_links results_links_deep web-result result--no-result"><div class="no-results">No results.</div></div>"#;
        assert_eq!(parse_results_page(none), ResultsPage::Results(vec![]));
        let challenge = r#"<div class="anomaly-modal__title">Unfortunately, bots use DuckDuckGo too.</div><form id="challenge-form"></form>"#;
        assert_eq!(parse_results_page(challenge), ResultsPage::Challenge);
        assert_eq!(
            parse_results_page("<html><body><ol class=\"new-layout\"></ol></body></html>"),
            ResultsPage::Unrecognised
        );
    }
}
