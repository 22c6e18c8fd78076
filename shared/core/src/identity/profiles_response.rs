//! Klaviyo's `GET /api/profiles` in JSON:API form: the query for a set of ids, and the
//! answer's profiles and next page.

use serde::Deserialize;

use crate::klaviyo::json_api::{LinksWire, next_link};

use super::Profile;
use crate::klaviyo::query_string::percent_encode;

/// Profiles per page: `GET /api/profiles` allows `page[size]` up to 100.
/// <https://developers.klaviyo.com/en/reference/get_profiles>
pub const MAX_PROFILES_PER_PAGE: usize = 100;

/// The query string (without `?`) that fetches `ids` (at most [`MAX_PROFILES_PER_PAGE`])
/// with only the fields identity needs.
pub fn profiles_query(ids: &[String]) -> String {
    let quoted: Vec<String> = ids
        .iter()
        .map(|id| format!("\"{}\"", id.replace(['"', '\\'], "")))
        .collect();
    let filter = format!("any(id,[{}])", quoted.join(","));
    format!(
        "filter={}&fields%5Bprofile%5D=email%2Cexternal_id%2Cphone_number&page%5Bsize%5D={}",
        percent_encode(&filter),
        MAX_PROFILES_PER_PAGE
    )
}

/// One page of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilesPage {
    /// The profiles on the page.
    pub profiles: Vec<Profile>,
    /// `links.next`, if there is another page.
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct PageWire {
    #[serde(default)]
    data: Vec<ProfileWire>,
    #[serde(default)]
    links: Option<LinksWire>,
}

#[derive(Deserialize)]
struct ProfileWire {
    id: String,
    #[serde(default)]
    attributes: AttributesWire,
}

#[derive(Deserialize, Default)]
struct AttributesWire {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
}

/// Parses one page of `GET /api/profiles`. Empty strings count as absent.
pub fn parse_profiles_page(body: &[u8]) -> Result<ProfilesPage, serde_json::Error> {
    let page: PageWire = serde_json::from_slice(body)?;
    let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    Ok(ProfilesPage {
        profiles: page
            .data
            .into_iter()
            .map(|p| Profile {
                id: p.id,
                email: present(p.attributes.email),
                external_id: present(p.attributes.external_id),
                phone_number: present(p.attributes.phone_number),
            })
            .collect(),
        next: next_link(page.links),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_sparse_filtered_query() {
        let query = profiles_query(&["01A".to_owned(), "01B".to_owned()]);
        assert_eq!(
            query,
            "filter=any%28id%2C%5B%2201A%22%2C%2201B%22%5D%29&fields%5Bprofile%5D=email%2Cexternal_id%2Cphone_number&page%5Bsize%5D=100"
        );
    }

    #[test]
    fn parses_profiles_and_the_next_link() {
        let body = br#"{"data": [
            {"type": "profile", "id": "01A", "attributes": {"email": "a@example.com", "external_id": "u-1"}},
            {"type": "profile", "id": "01B", "attributes": {"email": "b@example.com", "external_id": null}},
            {"type": "profile", "id": "01C", "attributes": {"email": "", "external_id": "  ", "phone_number": "+15005550006"}}],
            "links": {"self": "x", "next": "https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D=abc"}}"#;
        let page = parse_profiles_page(body).unwrap();
        assert_eq!(
            page.profiles,
            vec![
                Profile {
                    id: "01A".into(),
                    email: Some("a@example.com".into()),
                    external_id: Some("u-1".into()),
                    phone_number: None,
                },
                Profile {
                    id: "01B".into(),
                    email: Some("b@example.com".into()),
                    external_id: None,
                    phone_number: None,
                },
                Profile {
                    id: "01C".into(),
                    email: None,
                    external_id: None,
                    phone_number: Some("+15005550006".into()),
                },
            ]
        );
        assert_eq!(
            page.next.as_deref(),
            Some("https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D=abc")
        );
    }

    #[test]
    fn the_last_page_has_no_next() {
        let page = parse_profiles_page(br#"{"data": [], "links": {"next": null}}"#).unwrap();
        assert_eq!(
            page,
            ProfilesPage {
                profiles: vec![],
                next: None
            }
        );
    }
}
