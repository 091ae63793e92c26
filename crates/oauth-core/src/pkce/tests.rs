use super::*;

const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[test]
fn rfc7636_appendix_b_vector() {
    let verifier = CodeVerifier::parse(RFC_VERIFIER).unwrap();
    let challenge = verifier.challenge(ChallengeMethod::S256);
    assert_eq!(challenge.as_str(), RFC_CHALLENGE);
    assert_eq!(challenge.method(), ChallengeMethod::S256);
}

#[test]
fn plain_challenge_is_the_verifier() {
    let verifier = CodeVerifier::parse(RFC_VERIFIER).unwrap();
    assert_eq!(
        verifier.challenge(ChallengeMethod::Plain).as_str(),
        RFC_VERIFIER
    );
}

#[test]
fn generated_verifiers_are_valid_and_distinct() {
    let verifiers: Vec<_> = (0..64).map(|_| CodeVerifier::generate()).collect();
    for v in &verifiers {
        assert_eq!(v.expose_secret().len(), 43);
        assert!(CodeVerifier::parse(v.expose_secret()).is_ok());
        assert!(!v.expose_secret().contains('='), "no padding");
        assert!(!v.expose_secret().contains(['+', '/']), "url-safe alphabet");
    }
    let distinct: std::collections::HashSet<_> =
        verifiers.iter().map(CodeVerifier::expose_secret).collect();
    assert_eq!(distinct.len(), verifiers.len());
}

#[test]
fn s256_challenge_is_unpadded_base64url() {
    for _ in 0..32 {
        let c = CodeVerifier::generate().challenge(ChallengeMethod::S256);
        assert_eq!(c.as_str().len(), 43);
        assert!(
            c.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}

#[test]
fn parse_enforces_length_bounds() {
    assert_eq!(
        CodeVerifier::parse(&"a".repeat(42)),
        Err(InvalidVerifier::Length(42))
    );
    assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
    assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
    assert_eq!(
        CodeVerifier::parse(&"a".repeat(129)),
        Err(InvalidVerifier::Length(129))
    );
}

#[test]
fn parse_rejects_reserved_characters() {
    for bad in ['+', '/', '=', ' ', '%', 'é', '\n'] {
        let mut s = "a".repeat(50);
        s.push(bad);
        assert_eq!(
            CodeVerifier::parse(&s),
            Err(InvalidVerifier::Character),
            "{bad:?}"
        );
    }
    assert!(CodeVerifier::parse(&format!("{}-._~", "a".repeat(40))).is_ok());
}

#[test]
fn debug_redacts_and_error_messages_say_what_to_do() {
    let v = CodeVerifier::parse(RFC_VERIFIER).unwrap();
    assert!(!format!("{v:?}").contains(RFC_VERIFIER));
    assert!(
        InvalidVerifier::Length(3)
            .to_string()
            .contains("CodeVerifier::generate()")
    );
}

#[test]
fn pkce_keeps_verifier_and_method_together() {
    let pkce = Pkce::generate(ChallengeMethod::Plain);
    assert_eq!(pkce.method(), ChallengeMethod::Plain);
    assert_eq!(pkce.challenge().as_str(), pkce.verifier().expose_secret());
    assert_eq!(pkce.challenge().method(), ChallengeMethod::Plain);
    assert_ne!(
        Pkce::generate(ChallengeMethod::S256),
        Pkce::generate(ChallengeMethod::S256)
    );
}

#[test]
fn method_wire_names() {
    assert_eq!(ChallengeMethod::S256.as_str(), "S256");
    assert_eq!(ChallengeMethod::Plain.to_string(), "plain");
    assert!("s256".parse::<ChallengeMethod>().is_err());
    assert_eq!(
        serde_json::to_string(&ChallengeMethod::Plain).unwrap(),
        "\"plain\""
    );
    let m: ChallengeMethod = serde_json::from_str("\"S256\"").unwrap();
    assert_eq!(m, ChallengeMethod::S256);
}
