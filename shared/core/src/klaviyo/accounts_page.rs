//! Klaviyo's `GET /api/accounts`: the account a private key belongs to (a private key sees
//! exactly one). Its id is what webhooks carry as `meta.klaviyo_account_id`, so pulled rows
//! carry it too. <https://developers.klaviyo.com/en/reference/get_accounts>

use serde::Deserialize;

#[derive(Deserialize)]
struct PageWire {
    #[serde(default)]
    data: Vec<AccountWire>,
}

#[derive(Deserialize)]
struct AccountWire {
    id: String,
}

/// The id of the (first) account of a `GET /api/accounts` answer; `None` when it lists none.
pub fn parse_account_id(body: &[u8]) -> Result<Option<String>, serde_json::Error> {
    let page: PageWire = serde_json::from_slice(body)?;
    Ok(page
        .data
        .into_iter()
        .map(|account| account.id)
        .find(|id| !id.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_accounts_id() {
        let body = r#"{"data": [{"type": "account", "id": "XyZ9Ab",
            "attributes": {"contact_information": {"default_sender_name": "Shop"},
                           "industry": "Retail", "timezone": "Europe/Paris",
                           "preferred_currency": "EUR", "public_api_key": "XyZ9Ab"},
            "links": {"self": "https://a.klaviyo.com/api/accounts/XyZ9Ab/"}}],
            "links": {"self": "https://a.klaviyo.com/api/accounts/", "next": null, "prev": null}}"#;
        assert_eq!(
            parse_account_id(body.as_bytes()).unwrap().as_deref(),
            Some("XyZ9Ab")
        );
        assert_eq!(parse_account_id(br#"{"data": []}"#).unwrap(), None);
        assert!(parse_account_id(b"<html>").is_err());
    }
}
