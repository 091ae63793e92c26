//! Sealing, opening and checking flows.

use super::*;
use crate::ChallengeMethod;

fn sealer() -> FlowSealer {
    FlowSealer::new(&[7; 32])
}

#[test]
fn a_sealed_flow_opens_whole_and_only_with_its_key_and_context() {
    let flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/chat?a=\"b\"");
    let sealed = sealer().seal(&flow, b"flow");
    let opened = sealer().open(&sealed, b"flow").unwrap();
    assert_eq!(opened.id, flow.id);
    assert_eq!(opened.return_to, flow.return_to);
    assert_eq!(opened.issued_at, flow.issued_at);
    let (a, b) = (opened.pkce.unwrap(), flow.pkce.unwrap());
    assert_eq!(a.verifier().expose_secret(), b.verifier().expose_secret());
    assert_eq!(a.method(), b.method());
    assert_eq!(
        sealer().open(&sealed, b"key").unwrap_err(),
        FlowError::Invalid
    );
    assert_eq!(
        FlowSealer::new(&[8; 32])
            .open(&sealed, b"flow")
            .unwrap_err(),
        FlowError::Invalid
    );
    let rotated = FlowSealer::new(&[8; 32]).with_previous([sealer()]);
    assert!(rotated.open(&sealed, b"flow").is_ok(), "previous keys open");
    assert!(!sealed.contains(b.verifier().expose_secret()));
}

#[test]
fn tampered_and_oversized_values_are_invalid() {
    let sealed = sealer().seal(&FlowState::new(None, "/"), b"flow");
    let mut bytes = STANDARD.decode(&sealed).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = STANDARD.encode(bytes);
    for bad in [tampered.as_str(), "", "%%%", "AAAA", &"A".repeat(5000)] {
        assert_eq!(
            sealer().open(bad, b"flow").unwrap_err(),
            FlowError::Invalid,
            "{bad:.20}"
        );
    }
}

#[test]
fn a_callback_must_carry_its_flow_id_in_time() {
    let flow = FlowState::new(None, "/");
    let url = flow.callback_url(&Url::parse("http://localhost:3000/app/callback").unwrap());
    assert_eq!(
        url.as_str(),
        format!("http://localhost:3000/app/callback/{}", flow.id.as_str())
    );
    let max_age = Duration::from_secs(600);
    assert_eq!(flow.check(Some(flow.id.as_str()), max_age), Ok(()));
    assert_eq!(flow.check(None, max_age), Err(FlowError::Mismatch));
    let other = FlowId::generate();
    assert_eq!(
        flow.check(Some(other.as_str()), max_age),
        Err(FlowError::Mismatch)
    );
    let old = FlowState {
        issued_at: unix_now() - 601,
        ..FlowState::new(None, "/")
    };
    assert_eq!(
        old.check(Some(old.id.as_str()), max_age),
        Err(FlowError::Expired)
    );
    let future = FlowState {
        issued_at: unix_now() + 3600,
        ..FlowState::new(None, "/")
    };
    assert!(future.is_expired(max_age, unix_now()));
    assert_eq!(format!("{:?}", flow.id), "FlowId(<redacted>)");
}

#[test]
fn derive_needs_a_long_secret() {
    assert_eq!(
        FlowSealer::derive(&[1; 31]).unwrap_err(),
        SecretTooShort(31)
    );
    assert!(FlowSealer::derive(&[1; 32]).is_ok());
}
