//! Which request asks for what: the page's few paths and their query parameters, checked
//! before anything is done, so bad input gets a clear status (400, 404, 405, 414) and never
//! reaches the rest.

use super::board::LATEST_ANOMALIES;

/// Longest path and query accepted (longer: 414).
pub const MAX_URI: usize = 2048;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The page (`/`).
    Page,
    /// A file of the page (`/app.js`, …), by name.
    Asset(&'static str),
    /// The event stream: a page snapshot every second (`/events`).
    Events,
    /// The latest page snapshot as JSON (`/api/snapshot`).
    Snapshot,
    /// The model and its contour as JSON (`/api/model`).
    Model,
    /// The latest anomalies as JSON (`/api/anomalies?limit=N`).
    Anomalies {
        /// How many, newest first.
        limit: usize,
    },
}

/// A request refused: its status and why, for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Why, one line.
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// The page's files.
pub const ASSETS: [&str; 3] = ["app.js", "app.css", "favicon.svg"];

/// The route of `method` on `target` (path and query, as in the request line).
pub fn route(method: &str, target: &str) -> Result<Route, Refusal> {
    if target.len() > MAX_URI {
        return Err(Refusal::new(
            414,
            format!(
                "the address is {} bytes long; at most {MAX_URI}",
                target.len()
            ),
        ));
    }
    if method != "GET" && method != "HEAD" {
        return Err(Refusal::new(
            405,
            format!("{method} is not served; only GET"),
        ));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parameters = parse_query(query)?;
    let (route, allowed): (Route, &[&str]) = match path {
        "/" | "/index.html" => (Route::Page, &[]),
        "/events" => (Route::Events, &[]),
        "/api/snapshot" => (Route::Snapshot, &[]),
        "/api/model" => (Route::Model, &[]),
        "/api/anomalies" => (
            Route::Anomalies {
                limit: LATEST_ANOMALIES,
            },
            &["limit"],
        ),
        _ => match ASSETS
            .iter()
            .find(|name| path.strip_prefix('/') == Some(name))
        {
            Some(name) => (Route::Asset(name), &[]),
            None => return Err(Refusal::new(404, format!("nothing at {}", shown(path)))),
        },
    };
    for (name, _) in &parameters {
        if !allowed.contains(&name.as_str()) {
            return Err(Refusal::new(
                400,
                format!("{path} takes no parameter {}", shown(name)),
            ));
        }
    }
    match route {
        Route::Anomalies { .. } => {
            let limit = match parameters.first() {
                None => LATEST_ANOMALIES,
                Some((_, value)) => value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=LATEST_ANOMALIES).contains(n))
                    .ok_or_else(|| {
                        Refusal::new(
                            400,
                            format!(
                                "limit must be a number from 1 to {LATEST_ANOMALIES}, not {}",
                                shown(value)
                            ),
                        )
                    })?,
            };
            Ok(Route::Anomalies { limit })
        }
        route => Ok(route),
    }
}

/// `a=1&b=x%20y` as name–value pairs, percent-decoded (`+` is a space); a malformed escape,
/// text that is not UTF-8 or a repeated name is refused.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, Refusal> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(Refusal::new(
                400,
                format!("{} is given twice", shown(&name)),
            ));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn decode(text: &str) -> Result<String, Refusal> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Refusal::new(400, "malformed query: % must be followed by two hex digits")
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Refusal::new(400, "malformed query: not UTF-8"))
}

/// Client text quoted in an answer: at most 60 characters, control characters escaped.
fn shown(text: &str) -> String {
    let mut quoted: String = text
        .chars()
        .take(60)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(60).is_some() {
        quoted.push('…');
    }
    format!("\"{quoted}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: &str, target: &str) -> u16 {
        route(method, target).map_or_else(|r| r.status, |_| 200)
    }

    #[test]
    fn the_page_s_paths_are_served() {
        assert_eq!(route("GET", "/"), Ok(Route::Page));
        assert_eq!(route("HEAD", "/index.html"), Ok(Route::Page));
        assert_eq!(route("GET", "/events"), Ok(Route::Events));
        assert_eq!(route("GET", "/app.js"), Ok(Route::Asset("app.js")));
        assert_eq!(route("GET", "/api/snapshot"), Ok(Route::Snapshot));
        assert_eq!(route("GET", "/api/model"), Ok(Route::Model));
        assert_eq!(
            route("GET", "/api/anomalies?limit=5"),
            Ok(Route::Anomalies { limit: 5 })
        );
        assert_eq!(
            route("GET", "/api/anomalies"),
            Ok(Route::Anomalies {
                limit: LATEST_ANOMALIES
            })
        );
    }

    #[test]
    fn bad_requests_get_a_clear_status() {
        assert_eq!(status("GET", "/nothing"), 404);
        assert_eq!(status("GET", "/app.js/"), 404);
        assert_eq!(status("GET", "/../etc/passwd"), 404);
        assert_eq!(status("POST", "/"), 405);
        assert_eq!(status("DELETE", "/events"), 405);
        let long = format!("/?x={}", "a".repeat(MAX_URI));
        assert_eq!(status("GET", &long), 414);
        assert_eq!(status("GET", "/?debug=1"), 400);
        assert_eq!(status("GET", "/events?x"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=abc"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=0"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=1000000"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=1&limit=2"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=%zz"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=%4"), 400);
        assert_eq!(status("GET", "/api/anomalies?limit=%ff"), 400);
        // Harmless extras: empty pairs, a trailing `?`.
        assert_eq!(status("GET", "/?"), 200);
        assert_eq!(status("GET", "/api/anomalies?&limit=%33&"), 200);
    }

    #[test]
    fn answers_quote_client_text_short_and_escaped() {
        let refusal = route("GET", &format!("/{}\u{1b}", "x".repeat(100))).unwrap_err();
        assert!(refusal.message.len() < 100, "{}", refusal.message);
        assert!(refusal.message.contains('…'), "{}", refusal.message);
        let refusal = route("GET", "/a\u{1b}b").unwrap_err();
        assert_eq!(refusal.message, r#"nothing at "/a\u{1b}b""#);
    }
}
