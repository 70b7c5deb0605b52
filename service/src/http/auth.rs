//! Who may do what: API keys for writes, HMAC signatures for renders.
//!
//! An *API key* is `pmk_` followed by 64 hex digits of randomness; the catalog keeps only its
//! SHA-256 (a key has 256 bits of entropy, so a fast hash is as safe as a slow one, and a lookup
//! by hash needs no comparison loop). A *signature* is the lowercase hex HMAC-SHA256, under the
//! signing key, of the request path, `?`, and the query's `key=value` pairs other than `sig`,
//! exactly as sent, sorted and joined with `&`. Sorting lets clients build the query in any order.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

const KEY_PREFIX: &str = "pmk_";

/// A new random API key, shown once to whoever creates it.
pub fn generate_api_key() -> Result<String, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(secret)))
}

/// What the catalog stores for `key`.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Checks the bearer key of a write and returns the key's id. With auth off (allowed only on
/// loopback) every write passes, as nobody's.
pub async fn require_api_key(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if !state.config().auth {
        return Ok(None);
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized("missing-api-key", "this request needs `Authorization: Bearer <API key>`"));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| k.starts_with(KEY_PREFIX))
        .ok_or_else(|| ApiError::unauthorized("invalid-api-key", "the Authorization header is not `Bearer pmk_...`"))?;
    match state.catalog().active_api_key_by_hash(&hash_api_key(key)).await? {
        Some(row) => Ok(Some(row.id)),
        None => Err(ApiError::unauthorized("invalid-api-key", "the API key is unknown or revoked")),
    }
}

/// The message a signature covers: `path?` and the sorted pairs of `query` other than `sig`.
pub fn signed_message(path: &str, query: &str) -> String {
    let mut pairs: Vec<&str> =
        query.split('&').filter(|pair| !pair.is_empty() && !pair.starts_with("sig=") && *pair != "sig").collect();
    pairs.sort_unstable();
    format!("{path}?{}", pairs.join("&"))
}

/// The signature of `path` and `query` under `key`, as clients compute it.
pub fn sign(key: &[u8], path: &str, query: &str) -> String {
    hex::encode(mac(key, &signed_message(path, query)).finalize().into_bytes())
}

fn mac(key: &[u8], message: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    mac.update(message.as_bytes());
    mac
}

/// Checks the `sig` parameter when a signing key is configured.
pub fn verify_signature(signing_key: Option<&[u8]>, path: &str, query: &str) -> Result<(), ApiError> {
    let Some(key) = signing_key else {
        return Ok(());
    };
    let given = query.split('&').find_map(|pair| pair.strip_prefix("sig=")).ok_or_else(|| {
        ApiError::forbidden("missing-signature", "renders on this server need a `sig` parameter").with_param("sig")
    })?;
    let bad = || ApiError::forbidden("bad-signature", "the signature does not match the URL").with_param("sig");
    let given = hex::decode(given).map_err(|_| bad())?;
    let expected = mac(key, &signed_message(path, query)).finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_path_and_pairs_in_any_order() {
        let key = b"secret";
        let sig = sign(key, "/v1/images/abc/render", "w=300&fmt=webp");
        assert_eq!(sig, sign(key, "/v1/images/abc/render", "fmt=webp&w=300"));
        let ok = format!("fmt=webp&w=300&sig={sig}");
        verify_signature(Some(key), "/v1/images/abc/render", &ok).unwrap();

        for (path, query) in [
            ("/v1/images/abd/render", ok.clone()),
            ("/v1/images/abc/render", format!("fmt=webp&w=301&sig={sig}")),
            ("/v1/images/abc/render", format!("fmt=webp&w=300&sig={}", &sig[..10])),
            ("/v1/images/abc/render", "fmt=webp&w=300&sig=zz".to_owned()),
        ] {
            assert_eq!(
                verify_signature(Some(key), path, &query).unwrap_err().code(),
                "bad-signature",
                "{path}?{query}"
            );
        }
        assert_eq!(verify_signature(Some(key), "/x", "w=1").unwrap_err().code(), "missing-signature");
        verify_signature(None, "/x", "w=1").unwrap();
        assert_ne!(sig, sign(b"other", "/v1/images/abc/render", "w=300&fmt=webp"));
    }

    #[test]
    fn api_keys_are_random_and_stored_hashed() {
        let (a, b) = (generate_api_key().unwrap(), generate_api_key().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("pmk_") && a.len() == 68);
        assert_eq!(hash_api_key(&a).len(), 64);
        assert!(!hash_api_key(&a).contains(&a[4..]));
    }
}
