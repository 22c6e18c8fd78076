//! Applying a resolution to a track event (pure).

use serde_json::{Map, Value, json};

use super::resolution::Resolution;
use crate::segment::track::TrackEvent;

/// Whether an event is kept after identity is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityDecision {
    /// Store it.
    Keep,
    /// "Sync only own profiles" is on and the profile has no `external_id`.
    SkipNotOwnProfile,
}

/// The Klaviyo profile id a mapped event carries, if it came from Klaviyo.
pub fn klaviyo_profile_id(event: &TrackEvent) -> Option<&str> {
    event
        .klaviyo
        .as_ref()
        .map(|klaviyo| klaviyo.profile_id.as_str())
}

/// Applies the seed's identity rule to `event`:
/// - profile found with `external_id`: `userId` = it (no `anonymousId`);
/// - found without: `anonymousId` = the email (or, with no email either, the profile id);
/// - `context.traits.email` = the email whenever known;
/// - missing or unresolved: the profile-id fallback stays, marked unresolved.
///
/// With `only_own_profiles`, a found profile without `external_id` is skipped. Unresolved
/// and missing profiles are kept: whether they are "own" cannot be known, and dropping data
/// on a Klaviyo outage would be worse than syncing a profile too many.
pub fn apply_identity(
    event: &mut TrackEvent,
    resolution: &Resolution,
    only_own_profiles: bool,
) -> IdentityDecision {
    let Resolution::Found(profile) = resolution else {
        set_resolved(event, false);
        return IdentityDecision::Keep;
    };
    if only_own_profiles && profile.external_id.is_none() {
        return IdentityDecision::SkipNotOwnProfile;
    }
    match (&profile.external_id, &profile.email) {
        (Some(external_id), _) => {
            event.user_id = Some(external_id.clone());
            event.anonymous_id = None;
        }
        (None, Some(email)) => {
            event.user_id = None;
            event.anonymous_id = Some(email.clone());
        }
        (None, None) => {
            // A text-message-only profile: its phone number is all that names it.
            if let Some(phone) = &profile.phone_number {
                event.user_id = None;
                event.anonymous_id = Some(phone.clone());
            }
        }
    }
    for (trait_name, value) in [("email", &profile.email), ("phone", &profile.phone_number)] {
        let Some(value) = value else { continue };
        let traits = event
            .context
            .entry("traits")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(traits) = traits {
            traits.insert(trait_name.into(), json!(value));
        }
    }
    set_resolved(event, true);
    IdentityDecision::Keep
}

fn set_resolved(event: &mut TrackEvent, resolved: bool) {
    if let Some(klaviyo) = &mut event.klaviyo {
        klaviyo.identity_resolved = resolved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Profile;

    fn event() -> TrackEvent {
        TrackEvent::klaviyo_opened_for_tests("klaviyo-1", "01PROFILE")
    }

    fn resolved(event: &TrackEvent) -> bool {
        event.klaviyo.as_ref().unwrap().identity_resolved
    }

    fn found(email: Option<&str>, external_id: Option<&str>) -> Resolution {
        Resolution::Found(Profile {
            id: "01PROFILE".into(),
            email: email.map(str::to_owned),
            external_id: external_id.map(str::to_owned),
            phone_number: None,
        })
    }

    #[test]
    fn external_id_becomes_the_user_id() {
        let mut e = event();
        assert_eq!(
            apply_identity(&mut e, &found(Some("a@example.com"), Some("u-1")), false),
            IdentityDecision::Keep
        );
        assert_eq!(
            (e.user_id.as_deref(), e.anonymous_id.as_deref()),
            (Some("u-1"), None)
        );
        assert_eq!(e.context["traits"]["email"], "a@example.com");
        assert!(resolved(&e));
        assert_eq!(klaviyo_profile_id(&e), Some("01PROFILE"));
    }

    #[test]
    fn a_text_message_only_profile_is_named_by_its_phone_number() {
        let mut e = event();
        let profile = Resolution::Found(Profile {
            id: "P".into(),
            email: None,
            external_id: None,
            phone_number: Some("+15005550006".into()),
        });
        assert_eq!(
            apply_identity(&mut e, &profile, false),
            IdentityDecision::Keep
        );
        assert_eq!(e.anonymous_id.as_deref(), Some("+15005550006"));
        assert_eq!(e.context["traits"]["phone"], "+15005550006");
    }

    #[test]
    fn without_external_id_the_email_is_the_anonymous_id() {
        let mut e = event();
        apply_identity(&mut e, &found(Some("a@example.com"), None), false);
        assert_eq!(
            (e.user_id.as_deref(), e.anonymous_id.as_deref()),
            (None, Some("a@example.com"))
        );
    }

    #[test]
    fn unresolved_and_missing_keep_the_fallback_marked() {
        for resolution in [Resolution::Unresolved, Resolution::Missing] {
            let mut e = event();
            assert_eq!(
                apply_identity(&mut e, &resolution, true),
                IdentityDecision::Keep
            );
            assert_eq!(e.anonymous_id.as_deref(), Some("01PROFILE"));
            assert_eq!(e.user_id, None);
            assert!(!resolved(&e));
        }
    }

    #[test]
    fn only_own_profiles_skips_profiles_without_external_id() {
        let mut e = event();
        assert_eq!(
            apply_identity(&mut e, &found(Some("a@example.com"), None), true),
            IdentityDecision::SkipNotOwnProfile
        );
        let mut own = event();
        assert_eq!(
            apply_identity(&mut own, &found(None, Some("u-1")), true),
            IdentityDecision::Keep
        );
    }

    #[test]
    fn a_profile_with_neither_keeps_the_profile_id() {
        let mut e = event();
        apply_identity(&mut e, &found(None, None), false);
        assert_eq!(e.anonymous_id.as_deref(), Some("01PROFILE"));
        assert!(e.context.get("traits").is_none());
        assert!(resolved(&e));
    }
}
