//! The page's files, compiled into the binary (nothing to install, nothing fetched from
//! elsewhere: the content security policy allows only this server).

/// The page.
pub const INDEX: &str = include_str!("assets/index.html");
/// Everything the page loads comes from here; no inline script or style.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A file by name (as [`super::routes::ASSETS`] lists them): content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("assets/app.js"),
        )),
        "app.css" => Some(("text/css; charset=utf-8", include_str!("assets/app.css"))),
        "favicon.svg" => Some(("image/svg+xml", include_str!("assets/favicon.svg"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_listed_file_is_there() {
        for name in super::super::routes::ASSETS {
            assert!(super::asset(name).is_some(), "{name}");
        }
        assert!(super::INDEX.contains("/app.js") && super::INDEX.contains("/app.css"));
    }
}
