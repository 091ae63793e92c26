//! The layer around a plain tower service under hyper, over real HTTP: sign in and out.

use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
use modelgates_emulator::Emulator;

#[tokio::test]
async fn signs_in_and_out_without_axum_routing() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config =
        ModelGatesConfig::new(&url, CookieSecret::generate()).with_base_url(emu.base_url());
    let server = tokio::spawn(example_tower_only::serve(
        listener,
        ModelGatesAuth::new(config),
    ));

    // This client follows redirects across both servers and keeps cookies, like a browser.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let home = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Signed out"), "{home}");

    let landed = client.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(landed.url().as_str(), format!("{url}/"));
    let page = landed.text().await.unwrap();
    let key = emu.issued_keys().pop().unwrap().key;
    assert!(
        page.contains(&format!("Signed in with key {}", &key[..8])),
        "{page}"
    );
    assert!(!page.contains(&key));

    let out = client
        .post(format!("{url}/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(out.contains("Signed out"), "{out}");
    server.abort();
}

/// A key is text from the gateway: written into the page escaped, whatever it holds.
#[test]
fn a_hostile_key_is_escaped_in_the_page() {
    let hostile = modelgates_axum::oauth_core::ApiKey::new("<script>alert(1)</script>-aaaa<b>");
    let page = example_tower_only::signed_in_page(&hostile.masked());
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(page.contains("&lt;script"), "{page}");
}
