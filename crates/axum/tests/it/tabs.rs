//! One flow per tab: a browser that clicks Connect in several tabs (or twice) keeps each
//! pending sign-in in its own flow cookie, approving any of them signs it in, the others'
//! callbacks are then harmless redirects that send nothing to ModelGates, and the pending
//! flows are bounded in number and size.

use crate::support;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use modelgates_axum::{ModelGatesAuth, ModelGatesKey};
use support::{Browser, config, emulator, path_of};

fn app(layer: ModelGatesAuth) -> Router {
    Router::new()
        .route(
            "/me",
            get(|key: Option<ModelGatesKey>| async move {
                if key.is_some() {
                    "signed in"
                } else {
                    "signed out"
                }
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn two_tabs_each_keep_their_sign_in_and_either_completes_it() {
    let emu = emulator().await;
    for first in [0, 1] {
        let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
        let tabs = [
            browser.start_sign_in("/login?return_to=/me?tab=1").await,
            browser.start_sign_in("/login?return_to=/me?tab=2").await,
        ];
        assert_eq!(browser.flow_cookies(), 2, "each tab's flow is kept");
        let exchanges = emu.exchange_count();

        let approved = browser.get(&tabs[first]).await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
        assert_eq!(approved.location(), format!("/me?tab={}", first + 1));
        assert_eq!(browser.get("/me").await.body, "signed in");
        assert_eq!(browser.flow_cookies(), 0, "a sign-in ends the others");
        assert_eq!(emu.exchange_count(), exchanges + 1);

        // The other tab's consent comes back: a harmless redirect, no second key.
        let other = browser.get_json(&tabs[1 - first]).await;
        assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
        assert_eq!(other.location(), "/");
        assert_eq!(emu.exchange_count(), exchanges + 1, "nothing sent");
        // So is the approved callback loaded again (a refresh, the back button).
        let again = browser.get(&tabs[first]).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        assert_eq!(emu.exchange_count(), exchanges + 1);
        assert_eq!(browser.get("/me").await.body, "signed in");
    }
}

/// A failed callback ends its own flow only: another tab's sign-in goes on.
#[tokio::test]
async fn a_failed_callback_leaves_the_other_tabs_sign_in() {
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let first = browser.start_sign_in("/login").await;
    let second = browser.start_sign_in("/login").await;
    let refused = browser
        .get_json(&format!("{}?code=made-up", path_of(&first)))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(browser.flow_cookies(), 1);
    assert_eq!(browser.get(&second).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/me").await.body, "signed in");
}

/// At most four pending sign-ins: a fifth drops the oldest, whose callback then belongs to no
/// sign-in of this browser; the flow cookies stay within 6 KiB in all, however long their
/// `return_to`.
#[tokio::test]
async fn pending_sign_ins_are_bounded_in_number_and_size() {
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let mut tabs = Vec::new();
    for _ in 0..5 {
        // Flows issued in the same second are told apart by the order the browser sends
        // their cookies in: oldest first.
        tabs.push(browser.start_sign_in("/login").await);
    }
    assert_eq!(browser.flow_cookies(), 4);
    let oldest = browser.get_json(&tabs[0]).await;
    assert_eq!(oldest.status, StatusCode::BAD_REQUEST);
    assert!(oldest.body.contains("flow_mismatch"), "{}", oldest.body);
    assert_eq!(browser.get(&tabs[4]).await.status, StatusCode::SEE_OTHER);

    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let long = format!("/login?return_to=/{}", "a".repeat(1500));
    for _ in 0..6 {
        browser.start_sign_in(&long).await;
        let total: usize = browser
            .cookies
            .iter()
            .filter(|(name, _)| name.starts_with(support::FLOW_COOKIE_PREFIX))
            .map(|(name, value)| name.len() + value.len())
            .sum();
        assert!(total <= 6 * 1024, "{total} bytes of flow cookies");
    }
    assert!(browser.flow_cookies() >= 2, "{}", browser.flow_cookies());
}
