//! The worker's side of joining: `martelli worker --join HOST:PORT` offers this worker to the
//! coordinator at HOST:PORT, again every few seconds for as long as the worker serves, so that
//! it joins whichever coordinator listens there next. Runs no tasks: `serve` does, when the
//! coordinator dials back.

use std::time::Duration;

use tonic::Request;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::PROTOCOL_VERSION;
use crate::auth::AddToken;
use crate::connect::source_chain;
use crate::wire::{self, coordinator_client::CoordinatorClient};

/// Offers again this often while part of a coordinator's run, so a worker notices a new
/// coordinator within this time of the old one going.
const RENEW: Duration = Duration::from_secs(2);
/// Offers again this often while no coordinator has taken the worker.
const RETRY: Duration = Duration::from_millis(500);
/// Longest an offer may take: the coordinator dials the worker back within it.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how a worker offers itself.
#[derive(Clone, Debug)]
pub struct JoinTarget {
    /// The coordinator's `host:port`.
    pub coordinator: String,
    /// Host the coordinator should dial this worker back at (`None`: the address the offer
    /// comes from, as the coordinator sees it).
    pub advertise: Option<String>,
    /// Port this worker serves on.
    pub port: u16,
    /// Threads this worker runs tasks on.
    pub threads: usize,
    /// This worker's name in logs.
    pub worker_id: String,
    /// The shared token, if the coordinator requires one.
    pub token: Option<String>,
    /// CA certificate (PEM) to verify a TLS coordinator with.
    pub tls_ca: Option<Vec<u8>>,
    /// Name to verify in the coordinator's certificate (default: the coordinator's host).
    pub tls_domain: Option<String>,
}

/// What one offer came to.
enum Outcome {
    /// Part of the coordinator's run.
    Joined(String),
    /// The coordinator answered but did not take this worker (full, cannot dial back).
    Declined(String),
    /// The coordinator refused the call itself: wrong token, another protocol version.
    Refused(String),
    /// No coordinator answered.
    Absent(String),
}

/// Offers this worker to `target.coordinator` forever; logs each change of outcome once.
pub async fn keep_joining(target: JoinTarget) {
    let mut last = String::new();
    loop {
        let outcome = offer(&target).await;
        let (text, pause) = match &outcome {
            Outcome::Joined(t) => (t.clone(), RENEW),
            Outcome::Declined(t) | Outcome::Absent(t) => (t.clone(), RETRY),
            Outcome::Refused(t) => (t.clone(), RENEW),
        };
        if text != last {
            let coordinator = target.coordinator.as_str();
            match outcome {
                Outcome::Joined(_) => tracing::info!(coordinator, "{text}"),
                Outcome::Declined(_) => tracing::info!(coordinator, "not taken: {text}"),
                Outcome::Refused(_) => {
                    tracing::error!(coordinator, "the coordinator refused this worker: {text}")
                }
                Outcome::Absent(_) => tracing::info!(coordinator, "no coordinator yet: {text}"),
            }
            last = text;
        }
        tokio::time::sleep(pause).await;
    }
}

/// One offer.
async fn offer(target: &JoinTarget) -> Outcome {
    let scheme = if target.tls_ca.is_some() { "https" } else { "http" };
    let endpoint = match Endpoint::from_shared(format!("{scheme}://{}", target.coordinator)) {
        Ok(e) => e.connect_timeout(Duration::from_secs(3)).tcp_nodelay(true),
        Err(e) => return Outcome::Refused(format!("not a valid address: {e}")),
    };
    let endpoint = match &target.tls_ca {
        None => endpoint,
        Some(ca) => {
            let host = target
                .coordinator
                .rsplit_once(':')
                .map_or(target.coordinator.as_str(), |(h, _)| h);
            let domain = target.tls_domain.clone().unwrap_or_else(|| host.to_string());
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name(domain);
            match endpoint.tls_config(tls) {
                Ok(e) => e,
                Err(e) => return Outcome::Refused(format!("TLS set-up failed: {e}")),
            }
        }
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Outcome::Absent(source_chain(&e)),
    };
    let token = match AddToken::new(target.token.as_deref()) {
        Ok(t) => t,
        Err(e) => return Outcome::Refused(e),
    };
    let mut client = CoordinatorClient::with_interceptor(channel, token);
    let mut request = Request::new(wire::JoinRequest {
        protocol_version: PROTOCOL_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").into(),
        worker_id: target.worker_id.clone(),
        threads: target.threads as u32,
        host: target.advertise.clone().unwrap_or_default(),
        port: u32::from(target.port),
    });
    request.set_timeout(OFFER_TIMEOUT);
    match client.join(request).await {
        Ok(reply) => {
            let r = reply.into_inner();
            if r.accepted {
                Outcome::Joined(format!(
                    "joined as {} ({}/{} workers)",
                    r.address, r.joined, r.expected
                ))
            } else {
                Outcome::Declined(r.reason)
            }
        }
        Err(status) => match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                Outcome::Absent(status.message().to_string())
            }
            code => Outcome::Refused(format!("{} ({code:?})", status.message())),
        },
    }
}
