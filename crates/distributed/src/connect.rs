//! Reaching workers: a channel with HTTP/2 keepalive (so a vanished peer does not hang a
//! stream), the token, optional TLS, and the handshake that checks the protocol version.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::auth::AddToken;
use crate::wire::{self, worker_client::WorkerClient};
use crate::{DistributedError, PROTOCOL_VERSION};

/// A gRPC client of one worker, with the token added to every call.
pub(crate) type Client = WorkerClient<InterceptedService<Channel, AddToken>>;

/// How the coordinator talks to workers.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Shared token, if the workers require one.
    pub token: Option<String>,
    /// CA certificate (PEM) to verify TLS workers with.
    pub tls_ca: Option<Vec<u8>>,
    /// Name to verify in the workers' certificates (default: the address's host).
    pub tls_domain: Option<String>,
    /// Largest message sent or accepted, bytes.
    pub max_message_bytes: usize,
    /// Silence after which a worker is declared lost; also bounds connecting.
    pub timeout: Duration,
    /// Heartbeat interval asked of workers.
    pub heartbeat: Duration,
    /// How the workers are fed (`[distributed] policy`).
    pub policy: martelli_schedule::Policy,
}

/// One worker, connected and introduced.
#[derive(Clone)]
pub(crate) struct Connection {
    /// `host:port`, as configured.
    pub address: String,
    pub client: Client,
    /// The worker's thread count.
    pub threads: usize,
    /// The smaller of the worker's and our message limits.
    pub max_message_bytes: usize,
}

/// Connects to `address` and shakes hands. Every failure names the address.
pub(crate) async fn connect(address: &str, options: &ClientOptions) -> Result<Connection, DistributedError> {
    let fail = |reason: String| DistributedError::Worker {
        address: address.to_string(),
        reason,
    };
    let scheme = if options.tls_ca.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(|e| fail(format!("not a valid address: {e}")))?
        .connect_timeout(options.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(options.heartbeat)
        // Longer than the heartbeat timeout, so that a worker declared lost for silence can
        // still deliver its late results (counted as dropped) if it wakes up; a vanished peer
        // still cannot hang a stream.
        .keep_alive_timeout(options.timeout * 2)
        .keep_alive_while_idle(true);
    if let Some(ca) = &options.tls_ca {
        let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
        let domain = options.tls_domain.clone().unwrap_or_else(|| host.to_string());
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(domain);
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| fail(format!("TLS set-up failed: {e}")))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| fail(format!("cannot connect: {}", source_chain(&e))))?;
    let token = AddToken::new(options.token.as_deref()).map_err(fail)?;
    let client = WorkerClient::with_interceptor(channel, token)
        .max_decoding_message_size(options.max_message_bytes)
        .max_encoding_message_size(options.max_message_bytes);
    let mut request = tonic::Request::new(wire::HandshakeRequest {
        protocol_version: PROTOCOL_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").into(),
    });
    request.set_timeout(options.timeout);
    let reply = client
        .clone()
        .handshake(request)
        .await
        .map_err(|s| fail(format!("handshake refused: {} ({:?})", s.message(), s.code())))?
        .into_inner();
    if reply.protocol_version != PROTOCOL_VERSION {
        return Err(fail(format!(
            "speaks protocol version {} (martelli {}); this coordinator speaks version {PROTOCOL_VERSION} (martelli {})",
            reply.protocol_version,
            reply.martelli_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    tracing::info!(
        address,
        worker = reply.worker_id,
        threads = reply.threads,
        "worker connected"
    );
    if options.token.is_some() && !reply.requires_token {
        tracing::warn!(
            address,
            "this worker takes calls without a token: anyone who reaches it can run work on it; \
             start it with the same token (--token-file or MARTELLI_TOKEN)"
        );
    }
    Ok(Connection {
        address: address.to_string(),
        client,
        threads: (reply.threads as usize).max(1),
        max_message_bytes: options.max_message_bytes.min(reply.max_message_bytes as usize),
    })
}

/// An error and its causes in one line (transport errors hide the useful part in a source).
pub(crate) fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
