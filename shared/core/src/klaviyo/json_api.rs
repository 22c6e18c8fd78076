//! What every JSON:API answer of Klaviyo's shares: `links.next`, the next page.

use serde::Deserialize;

/// An answer's `links`.
#[derive(Deserialize)]
pub(crate) struct LinksWire {
    #[serde(default)]
    next: Option<String>,
}

/// `links.next`, with an empty link counted as none.
pub(crate) fn next_link(links: Option<LinksWire>) -> Option<String> {
    links.and_then(|l| l.next).filter(|next| !next.is_empty())
}
