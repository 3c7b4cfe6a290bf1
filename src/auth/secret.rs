//! Secrets and their digests: argon2 password hashes, random bearer tokens, and the keyed
//! comparisons that must not leak through timing.
//!
//! A bearer token is `<kind>_<id>_<secret>`: the id (public, shown in token lists and used to
//! revoke) finds the record, and only a digest of the secret is kept — a stolen store or
//! memory dump yields nothing that authenticates. The digest comparison is constant-time.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use blake2::{Blake2s256, Digest};
use rand::RngCore;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// Bytes of randomness in a token's secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Bytes of a token's id (64 bits: unique, not secret).
const ID_BYTES: usize = 8;

/// Why a password could not be hashed (argon2 refused its input or parameters).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash a password: {0}")]
pub struct HashError(String);

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// An argon2id hash (PHC string, with its own random salt) of `password`. Slow by design: call
/// it off the async threads.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (argon2 compares in constant time). An
/// unreadable hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Spends the time of one password verification without a user: a login for a name that does
/// not exist must take as long as one with a wrong password, or timing tells which names exist.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) = DUMMY.get_or_init(|| hash_password(&random_hex(16)).ok()) {
        let _ = verify_password(password, hash);
    }
}

/// A random password for the first admin (printed once).
pub fn random_password() -> String {
    random_hex(12)
}

/// A random secret for node-to-node calls (the cluster's service token): not shaped like a
/// session or an API token, so it is only ever known through [`crate::auth::Auth::insert_token`].
pub fn service_secret() -> String {
    format!("cx_{}", random_hex(SECRET_BYTES))
}

/// What a bearer token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// From a login; expires.
    Session,
    /// Issued to a machine by an admin; lives until it expires or is revoked.
    Api,
    /// Given to a browser at a successful login: names that browser as one its user signed in
    /// from before, which login throttling treats as its own origin. Authenticates nothing.
    Device,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "cs",
            TokenKind::Api => "ct",
            TokenKind::Device => "cd",
        }
    }
}

/// A freshly minted token: the full bearer string (shown once), its id and the digest kept.
#[derive(Debug)]
pub struct MintedToken {
    pub bearer: String,
    pub id: String,
    pub digest: String,
}

/// Mints a new token of `kind`.
pub fn mint(kind: TokenKind) -> MintedToken {
    let id = random_hex(ID_BYTES);
    let secret = random_hex(SECRET_BYTES);
    MintedToken {
        bearer: format!("{}_{id}_{secret}", kind.prefix()),
        digest: digest(&secret),
        id,
    }
}

/// A presented bearer token, split: its kind, id and secret. `None` when it is not shaped like
/// one of ours (anything else is simply unknown, never an error worth detail).
pub fn parse(bearer: &str) -> Option<(TokenKind, &str, &str)> {
    let (prefix, rest) = bearer.split_once('_')?;
    let kind = match prefix {
        "cs" => TokenKind::Session,
        "ct" => TokenKind::Api,
        "cd" => TokenKind::Device,
        _ => return None,
    };
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, n: usize| s.len() == n * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, ID_BYTES) && hexish(secret, SECRET_BYTES)).then_some((kind, id, secret))
}

/// The digest kept for a token's secret (hex of BLAKE2s-256).
pub fn digest(secret: &str) -> String {
    hex(&Blake2s256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose digest is `expected`, in time independent of where they
/// differ.
pub fn secret_matches(secret: &str, expected: &str) -> bool {
    digest(secret).as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsf", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn minted_tokens_parse_back_and_only_their_secret_matches() {
        let t = mint(TokenKind::Api);
        let (kind, id, secret) = parse(&t.bearer).unwrap();
        assert_eq!(kind, TokenKind::Api);
        assert_eq!(id, t.id);
        assert!(secret_matches(secret, &t.digest));
        assert!(!t.bearer.contains(&t.digest));
        let other = mint(TokenKind::Session);
        let (_, _, other_secret) = parse(&other.bearer).unwrap();
        assert!(!secret_matches(other_secret, &t.digest));
    }

    #[test]
    fn anything_not_shaped_like_a_token_is_refused_without_panicking() {
        for s in [
            "",
            "_",
            "cs",
            "cs_",
            "cs__",
            "xx_00_11",
            "cs_0011_22",
            "cs_zzzzzzzzzzzzzzzz_00",
            "ct_\u{e9}\u{e9}_\u{e9}",
            &"a".repeat(10_000),
        ] {
            assert!(parse(s).is_none(), "{s:?}");
        }
    }
}
