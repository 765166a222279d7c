//! The shared-token check: a worker started with a token refuses every call that does not
//! carry it, before anything runs.

use tonic::{Request, Status};

/// Metadata key carrying the token, as `Bearer <token>`.
const AUTHORIZATION: &str = "authorization";

/// Server side: checks the token on every call (constant-time, so timing reveals nothing).
#[derive(Clone)]
pub(crate) struct CheckToken {
    /// `Bearer <token>` as expected on the wire, or `None` to accept every call.
    expected: Option<Vec<u8>>,
}

impl CheckToken {
    pub(crate) fn new(token: Option<&str>) -> CheckToken {
        CheckToken {
            expected: token.map(|t| format!("Bearer {t}").into_bytes()),
        }
    }
}

impl tonic::service::Interceptor for CheckToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let peer = request.remote_addr();
        match request.metadata().get(AUTHORIZATION) {
            Some(given) if constant_time_eq(given.as_bytes(), expected) => Ok(request),
            Some(_) => {
                tracing::warn!(?peer, "refused a call: wrong token");
                Err(Status::unauthenticated("wrong token"))
            }
            None => {
                tracing::warn!(?peer, "refused a call: no token");
                Err(Status::unauthenticated(
                    "this server requires a token (--token-file, token_file or MARTELLI_TOKEN)",
                ))
            }
        }
    }
}

/// Client side: adds the token to every call.
#[derive(Clone)]
pub(crate) struct AddToken {
    value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl AddToken {
    pub(crate) fn new(token: Option<&str>) -> Result<AddToken, String> {
        let value = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| "the token must be printable ASCII".to_string())?;
        Ok(AddToken { value })
    }
}

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.value {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The shared token, for a worker and a coordinator alike: from `file` when given, else from
/// the `MARTELLI_TOKEN` environment variable when it is set and not blank, else none.
pub fn shared_token(file: Option<&std::path::Path>) -> Result<Option<String>, String> {
    let token = match file {
        Some(path) => Some(read_token_file(path)?),
        None => std::env::var("MARTELLI_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty()),
    };
    match token {
        // Refused at start-up: HTTP/2 peers reject headers this big (status 431) only later.
        Some(t) if t.len() > MAX_TOKEN_BYTES => Err(format!(
            "the token is {} bytes; at most {MAX_TOKEN_BYTES} fit in a request's headers",
            t.len()
        )),
        Some(t) if !t.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
            Err("the token must be printable ASCII".into())
        }
        token => Ok(token),
    }
}

/// Longest token accepted: well inside every HTTP/2 peer's header limit.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Reads a token file: the first line, trimmed; an empty token is an error.
fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn tokens_are_checked() {
        let mut check = CheckToken::new(Some("s3cret"));
        let mut add = AddToken::new(Some("s3cret")).unwrap();
        assert!(check.call(add.call(Request::new(())).unwrap()).is_ok());
        let mut wrong = AddToken::new(Some("guess")).unwrap();
        let e = check.call(wrong.call(Request::new(())).unwrap()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = check.call(Request::new(())).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(CheckToken::new(None).call(Request::new(())).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("long");
        std::fs::write(&long, "x".repeat(MAX_TOKEN_BYTES + 1)).unwrap();
        let e = shared_token(Some(&long)).unwrap_err();
        assert!(e.contains("at most 4096"), "{e}");
        let fine = dir.path().join("fine");
        std::fs::write(&fine, "x".repeat(MAX_TOKEN_BYTES)).unwrap();
        assert!(shared_token(Some(&fine)).is_ok());
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
