//! The contract every [`KeyStore`] must meet, as a suite a store's own tests can run
//! (feature `test-util`).
//!
//! [`conformance`] panics, naming the broken rule, when the store:
//!
//! * does not give back exactly what was saved (key, user id with characters JSON must escape,
//!   issue time, expiry, the app's data);
//! * gives two sessions the same token, or finds a key for a token it never issued;
//! * fails to remove an unknown token (removing one is not an error);
//! * lets a token's `Debug` print it;
//! * answers [`KeyStore::load_now`] differently from [`KeyStore::load`];
//! * for stores whose tokens are opaque ids ([`TokenProtection::Signed`]): puts the key in the
//!   token, or still loads a key after [`KeyStore::remove`];
//! * answers [`KeyStore::revoke_user`] (unless with an error for which
//!   [`StoreError::is_unsupported`](super::StoreError::is_unsupported) holds) without forgetting
//!   exactly the user's other sessions: all of them but the one kept, and no other user's;
//! * keeps links ([`KeyStore::save_link`], unless with an error for which
//!   [`StoreError::is_unsupported`](super::StoreError::is_unsupported) holds) otherwise than
//!   as sessions under [`SessionToken::for_account`]: a link loads with everything saved, a new
//!   link replaces the account's key, [`KeyStore::linked_accounts`] lists live links in byte
//!   order after the account given and pages by its limit, a removed link is neither loaded nor
//!   listed, and revoking the ModelGates user removes their links;
//! * loses track of a user's long-lived session once a short-lived one of theirs expired
//!   (a user index whose lifetime a later, shorter session shortened). The short session is
//!   saved first and checked last, up to two seconds later, once it has expired.
//!
//! Values are random on every run, so the suite can run against a shared database, and at most
//! five sessions are live at once, so a store bounded to five (evicting the oldest) passes.
//!
//! ```
//! use modelgates_axum::store::{MemoryStore, testing::conformance};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! conformance(&MemoryStore::default()).await;
//! # }
//! ```

use modelgates_oauth_core::__private::unix_now;
use modelgates_oauth_core::ApiKey;

use super::{KeyStore, SessionToken, StoredKey, TokenProtection};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SessionToken::random().expose_secret())
}

/// Runs the whole contract against `store`.
///
/// # Panics
///
/// When the store breaks a rule of the contract, or fails.
pub async fn conformance<S: KeyStore>(store: &S) {
    if S::TOKEN_PROTECTION != TokenProtection::Signed {
        round_trips(store).await;
        return;
    }
    // Saved first and checked last, so that the other rules run while it expires.
    let long_and_short = LongAndShort::save(store).await;
    round_trips(store).await;
    server_side(store).await;
    links(store).await;
    long_and_short.check(store).await;
}

async fn round_trips<S: KeyStore>(store: &S) {
    // A user id with characters JSON must escape, as ModelGates may send.
    let user = unique("user \"quoted\" \\ é");
    let app_data = format!(r#"{{"account":"{}","note":"quoted \" é"}}"#, unique("a"));
    let key = StoredKey::new(ApiKey::new(unique("sk-mg-v1")), Some(user.clone()))
        .with_expires_at(Some(4_102_444_800))
        .with_app_data(Some(app_data.clone()));
    let token = store.save(key.clone()).await.expect("save");
    let loaded = store
        .load(&token)
        .await
        .expect("load")
        .expect("a saved key loads");
    assert_eq!(loaded.key, key.key, "the key comes back");
    assert_eq!(
        loaded.user_id.as_deref(),
        Some(user.as_str()),
        "the user id comes back"
    );
    assert_eq!(loaded.issued_at, key.issued_at, "the issue time comes back");
    assert_eq!(loaded.expires_at, key.expires_at, "the expiry comes back");
    assert_eq!(
        loaded.app_data.as_deref(),
        Some(app_data.as_str()),
        "the app's data comes back"
    );
    agrees_now(store, &token, Some(&key.key)).await;

    let other_key = ApiKey::new(unique("sk-other"));
    let other = store
        .save(StoredKey::new(other_key.clone(), None))
        .await
        .expect("save");
    assert_ne!(other, token, "every session has its own token");
    let other_loaded = store.load(&other).await.expect("load").expect("loads");
    assert_eq!(other_loaded.key, other_key);
    assert_eq!(other_loaded.user_id, None);
    assert_eq!(other_loaded.app_data, None, "no app data stays none");

    assert!(
        store
            .load(&SessionToken::random())
            .await
            .expect("load")
            .is_none(),
        "an unknown token finds nothing"
    );
    store
        .remove(&SessionToken::random())
        .await
        .expect("removing an unknown token is not an error");
    assert!(
        !format!("{token:?}").contains(token.expose_secret()),
        "tokens never print"
    );
    for session in [&token, &other] {
        store.remove(session).await.expect("remove");
    }
}

async fn server_side<S: KeyStore>(store: &S) {
    let key = unique("sk");
    let token = store
        .save(StoredKey::new(ApiKey::new(&key), None))
        .await
        .expect("save");
    assert!(
        !token.expose_secret().contains(&key),
        "the browser holds only an opaque id"
    );
    store.remove(&token).await.expect("remove");
    assert!(
        store.load(&token).await.expect("load").is_none(),
        "removed means gone"
    );
    agrees_now(store, &token, None).await;
    revokes_a_user(store).await;
}

async fn revokes_a_user<S: KeyStore>(store: &S) {
    let (user, bystander) = (unique("user"), unique("bystander"));
    let mut sessions = Vec::new();
    // Three sessions, with the two of the long-and-short rule: a store may hold as few as five
    // (a full one evicts the oldest).
    for owner in [&user, &user, &bystander] {
        let key = StoredKey::new(ApiKey::new(unique("sk")), Some(owner.clone()));
        sessions.push(store.save(key).await.expect("save"));
    }
    let kept = &sessions[0];
    match store.revoke_user(&user, Some(kept)).await {
        Err(error) if error.is_unsupported() => return,
        revoked => assert_eq!(
            revoked.expect("revoke_user"),
            1,
            "every other session of the user"
        ),
    }
    let live = |token| async move { store.load(token).await.expect("load").is_some() };
    assert!(live(kept).await, "the kept session stays");
    assert!(!live(&sessions[1]).await, "the other one is gone");
    assert!(live(&sessions[2]).await, "another user's session stays");
    assert_eq!(
        store.revoke_user(&user, None).await.expect("revoke_user"),
        1
    );
    assert!(!live(kept).await, "without a kept session, all of them");
    assert!(live(&sessions[2]).await);
    store.remove(&sessions[2]).await.expect("remove");
}

async fn links<S: KeyStore>(store: &S) {
    // Accounts that share a random prefix, so that paging from the prefix finds them first
    // whatever else a shared database holds; one with characters a query must escape.
    let prefix = unique("account");
    let accounts = [
        format!("{prefix}-0 'quoted' %_"),
        format!("{prefix}-1"),
        format!("{prefix}-2"),
    ];
    let user = unique("user");
    let first = StoredKey::new(ApiKey::new(unique("sk-first")), Some(user.clone()))
        .with_expires_at(Some(4_102_444_800))
        .with_app_data(Some(r#"{"plan":"pro"}"#.to_owned()));
    match store.save_link(&accounts[0], first.clone()).await {
        Err(error) if error.is_unsupported() => return,
        saved => saved.expect("save_link"),
    }
    let token = SessionToken::for_account(&accounts[0]);
    let loaded = store
        .load(&token)
        .await
        .expect("load")
        .expect("a link loads");
    assert_eq!(loaded.key, first.key, "a link loads its key");
    assert_eq!(
        loaded.user_id.as_deref(),
        Some(user.as_str()),
        "and its user id"
    );
    assert_eq!(loaded.expires_at, first.expires_at, "and its expiry");
    assert_eq!(loaded.app_data, first.app_data, "and its app data");
    let replacement = StoredKey::new(ApiKey::new(unique("sk-second")), Some(user.clone()));
    store
        .save_link(&accounts[0], replacement.clone())
        .await
        .expect("save_link");
    agrees_now(store, &token, Some(&replacement.key)).await;
    let loaded = store.load(&token).await.expect("load").expect("loads");
    assert_eq!(
        loaded.key, replacement.key,
        "a new link replaces the account's key"
    );
    for account in &accounts[1..] {
        let key = StoredKey::new(ApiKey::new(unique("sk")), None);
        store.save_link(account, key).await.expect("save_link");
    }
    let page = |after: String, limit| async move {
        store
            .linked_accounts(Some(&after), limit)
            .await
            .expect("linked_accounts")
    };
    assert_eq!(
        page(prefix.clone(), 2).await,
        accounts[..2],
        "links are listed in byte order after the account given, as many as asked"
    );
    assert_eq!(
        page(accounts[1].clone(), 1).await,
        accounts[2..],
        "the next page starts after the last account of the previous one"
    );
    store
        .remove(&SessionToken::for_account(&accounts[1]))
        .await
        .expect("remove");
    assert!(
        store
            .load(&SessionToken::for_account(&accounts[1]))
            .await
            .expect("load")
            .is_none(),
        "a removed link is gone"
    );
    assert_eq!(
        page(prefix.clone(), 2).await,
        [accounts[0].clone(), accounts[2].clone()],
        "a removed link is not listed"
    );
    match store.revoke_user(&user, None).await {
        Err(error) if error.is_unsupported() => {}
        revoked => {
            assert_eq!(revoked.expect("revoke_user"), 1, "the user's link");
            assert!(
                store.load(&token).await.expect("load").is_none(),
                "revoking the ModelGates user removes their links"
            );
            let listed = page(prefix.clone(), 1).await;
            assert_eq!(listed, accounts[2..], "and they are not listed");
        }
    }
    for account in &accounts {
        store
            .remove(&SessionToken::for_account(account))
            .await
            .expect("remove");
    }
}

/// A long-lived session, then a short one of the same user: once the short one expired,
/// revoking the user still finds the long one.
struct LongAndShort {
    user: String,
    long: SessionToken,
    short_expiry: u64,
}

impl LongAndShort {
    async fn save<S: KeyStore>(store: &S) -> Self {
        let user = unique("user");
        let long = store
            .save(StoredKey::new(
                ApiKey::new(unique("sk")),
                Some(user.clone()),
            ))
            .await
            .expect("save");
        let short_expiry = unix_now() + 1;
        store
            .save(
                StoredKey::new(ApiKey::new(unique("sk")), Some(user.clone()))
                    .with_expires_at(Some(short_expiry)),
            )
            .await
            .expect("save");
        Self {
            user,
            long,
            short_expiry,
        }
    }

    async fn check<S: KeyStore>(self, store: &S) {
        // Time must pass: the rule is about what is left once the short session expired.
        while unix_now() <= self.short_expiry {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let revoked = match store.revoke_user(&self.user, None).await {
            Err(error) if error.is_unsupported() => return,
            revoked => revoked.expect("revoke_user"),
        };
        assert!(
            revoked >= 1,
            "revoking a user finds their long-lived session after a short one expired"
        );
        assert!(
            store.load(&self.long).await.expect("load").is_none(),
            "the long-lived session is revoked"
        );
    }
}

/// When `load_now` answers, it answers as `load` does.
async fn agrees_now<S: KeyStore>(store: &S, token: &SessionToken, expected: Option<&ApiKey>) {
    if let Some(now) = store.load_now(token) {
        let now = now.expect("load_now");
        assert_eq!(
            now.as_ref().map(|stored| &stored.key),
            expected,
            "load_now answers as load does"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{CookieStore, MemoryStore};

    #[tokio::test]
    async fn the_built_in_stores_conform() {
        conformance(&CookieStore).await;
        conformance(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_cookie_store_cannot_keep_links_and_says_so() {
        let key = StoredKey::new(ApiKey::new("sk"), None);
        let error = CookieStore.save_link("alice", key).await.unwrap_err();
        assert!(error.is_unsupported());
        assert!(error.to_string().contains("server-side store"), "{error}");
        let error = CookieStore.linked_accounts(None, 10).await.unwrap_err();
        assert!(error.is_unsupported());
    }

    #[tokio::test]
    async fn the_cookie_store_cannot_revoke_a_user_and_says_so() {
        let error = CookieStore.revoke_user("u", None).await.unwrap_err();
        assert!(error.is_unsupported());
        assert!(error.to_string().contains("server-side store"), "{error}");
    }

    #[tokio::test]
    async fn memory_store_purges_expired_entries() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let mut old = StoredKey::new(ApiKey::new("old"), None);
        old.issued_at -= 120;
        let token = store.save(old).await.unwrap();
        assert!(store.load(&token).await.unwrap().is_none());
        store
            .save(StoredKey::new(ApiKey::new("new"), None))
            .await
            .unwrap();
        assert_eq!(store.len(), 1, "the expired entry was purged");
    }

    #[tokio::test]
    async fn a_full_memory_store_evicts_the_oldest_and_stays_correct() {
        // As few sessions as the conformance suite may hold at once.
        let store = MemoryStore::with_capacity(Duration::from_secs(3600), 5);
        let mut tokens = Vec::new();
        for i in 0..7 {
            let key = StoredKey::new(ApiKey::new(format!("sk-{i}")), None);
            tokens.push(store.save(key).await.unwrap());
        }
        assert_eq!(store.len(), 5);
        for (i, token) in tokens.iter().enumerate() {
            let loaded = store.load(token).await.unwrap();
            if i < 2 {
                assert!(loaded.is_none(), "session {i} was evicted");
            } else {
                assert_eq!(loaded.unwrap().key, ApiKey::new(format!("sk-{i}")));
            }
        }
        // Revoked sessions free their place and never come back.
        store.revoke(&tokens[4]);
        let newest = store
            .save(StoredKey::new(ApiKey::new("sk-new"), None))
            .await
            .unwrap();
        assert!(store.load(&tokens[4]).await.unwrap().is_none());
        assert!(
            store.load(&tokens[2]).await.unwrap().is_some(),
            "no needless eviction"
        );
        assert!(store.load(&newest).await.unwrap().is_some());
        for _ in 0..100 {
            let token = store
                .save(StoredKey::new(ApiKey::new("sk-churn"), None))
                .await
                .unwrap();
            store.revoke(&token);
        }
        assert!(store.len() <= 5);
        conformance(&store).await;
    }

    /// A `MemoryStore` with one of the faults the suite must catch.
    #[derive(Default)]
    struct Faulty {
        inner: MemoryStore,
        never_forgets: bool,
        load_now_lies: bool,
    }

    impl KeyStore for Faulty {
        const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;
        async fn save(&self, key: StoredKey) -> Result<SessionToken, crate::store::StoreError> {
            self.inner.save(key).await
        }
        async fn load(
            &self,
            token: &SessionToken,
        ) -> Result<Option<StoredKey>, crate::store::StoreError> {
            self.inner.load(token).await
        }
        async fn remove(&self, token: &SessionToken) -> Result<(), crate::store::StoreError> {
            if self.never_forgets {
                return Ok(());
            }
            self.inner.remove(token).await
        }
        fn load_now(
            &self,
            _token: &SessionToken,
        ) -> Option<Result<Option<StoredKey>, crate::store::StoreError>> {
            self.load_now_lies.then_some(Ok(None))
        }
    }

    /// A store whose `load_now` disagrees with `load` fails the suite.
    #[tokio::test]
    #[should_panic(expected = "load_now answers as load does")]
    async fn a_store_whose_load_now_lies_fails() {
        let store = Faulty {
            load_now_lies: true,
            ..Faulty::default()
        };
        conformance(&store).await;
    }

    /// A store that forgets nothing fails the suite: the suite can fail.
    #[tokio::test]
    #[should_panic(expected = "removed means gone")]
    async fn a_store_that_never_forgets_fails() {
        let store = Faulty {
            never_forgets: true,
            ..Faulty::default()
        };
        conformance(&store).await;
    }
}
