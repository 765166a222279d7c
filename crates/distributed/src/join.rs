//! Workers that join: the coordinator's side of `martelli worker --join`. A small gRPC server
//! (the `Coordinator` service) takes each worker's offer, dials the worker back with the same
//! [`connect`] as a listed worker (token, TLS, handshake), and hands the sweep the first
//! `expect` workers that answer. It keeps answering while the sweep runs, so that a late or
//! extra worker is told to wait for the next coordinator: no worker ever changes the cores of
//! a point once the sweep has started. Runs no tasks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tonic::{Request, Response, Status};

use crate::auth::CheckToken;
use crate::connect::{ClientOptions, Connection, connect};
use crate::wire::{self, coordinator_server};
use crate::{DistributedError, PROTOCOL_VERSION};

/// How a coordinator waits for joining workers.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// Workers the sweep waits for.
    pub expect: usize,
    /// How long to wait for them.
    pub timeout: Duration,
    /// Certificate and key (PEM) to serve the joining workers over TLS with.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// Who has joined, shared by the server's handler and the sweep that waits.
struct Roster {
    /// Workers that joined and answered the dial-back, by the address they are dialed at.
    joined: BTreeMap<String, Connection>,
    /// Workers the sweep waits for.
    expect: usize,
    /// Set once the sweep has its workers: from then on every offer is turned away.
    started: bool,
}

/// The `Coordinator` service: one handler, `Join`.
struct JoinService {
    roster: Arc<Mutex<Roster>>,
    /// Woken whenever a worker joins.
    changed: Arc<Notify>,
    client: ClientOptions,
}

/// The listening side of a coordinator, alive for the whole sweep; stops when dropped.
pub(crate) struct JoinServer {
    /// Dropping it (or sending) stops the server.
    _stop: oneshot::Sender<()>,
}

impl JoinServer {
    /// Serves `Join` on `listener` and waits until `options.expect` workers have joined, then
    /// checks that each still answers (a worker that vanished is dropped and waited for
    /// again). `progress` hears `(joined, expected)` on every change. Fails after
    /// `options.timeout`, saying how many came and from where.
    pub(crate) async fn gather(
        listener: tokio::net::TcpListener,
        options: &JoinOptions,
        client: &ClientOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(JoinServer, Vec<Connection>), DistributedError> {
        let local = listener
            .local_addr()
            .map_err(|e| DistributedError::Join(format!("cannot read the listening address: {e}")))?;
        let roster = Arc::new(Mutex::new(Roster {
            joined: BTreeMap::new(),
            expect: options.expect,
            started: false,
        }));
        let changed = Arc::new(Notify::new());
        let service = coordinator_server::CoordinatorServer::new(JoinService {
            roster: roster.clone(),
            changed: changed.clone(),
            client: client.clone(),
        });
        let service = tonic::service::interceptor::InterceptedService::new(
            service,
            CheckToken::new(client.token.as_deref()),
        );
        let mut builder = tonic::transport::Server::builder().tcp_nodelay(true);
        if let Some((cert, key)) = &options.tls {
            let identity = tonic::transport::Identity::from_pem(cert, key);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| DistributedError::Join(format!("TLS set-up failed: {e}")))?;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let server = builder.add_service(service).serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = stopped.await;
            },
        );
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "the join server stopped");
            }
        });
        tracing::info!(%local, expect = options.expect, "waiting for workers to join");
        let server = JoinServer { _stop: stop };
        let deadline = Instant::now() + options.timeout;
        let mut shown = usize::MAX;
        loop {
            let waiting = changed.notified();
            let count = roster.lock().map_or(0, |r| r.joined.len());
            if count != shown {
                progress(count, options.expect);
                shown = count;
            }
            if count >= options.expect {
                let joined: Vec<Connection> = roster
                    .lock()
                    .map(|r| r.joined.values().cloned().collect())
                    .unwrap_or_default();
                let gone = still_there(&joined, client.timeout).await;
                let mut r = roster
                    .lock()
                    .map_err(|_| DistributedError::Join("poisoned roster".into()))?;
                for address in &gone {
                    tracing::warn!(address, "a worker joined but no longer answers: not counted");
                    r.joined.remove(address);
                }
                if r.joined.len() >= options.expect {
                    r.started = true;
                    let connections = r.joined.values().take(options.expect).cloned().collect();
                    tracing::info!(workers = options.expect, "every expected worker joined");
                    return Ok((server, connections));
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let from: Vec<String> = roster
                    .lock()
                    .map(|r| r.joined.keys().cloned().collect())
                    .unwrap_or_default();
                return Err(DistributedError::Join(format!(
                    "{} of {} workers joined {local} within {}{}; start more with `martelli worker --join HOST:{}` \
                     (HOST: this machine's address as the workers see it), or lower expect_workers",
                    from.len(),
                    options.expect,
                    humantime(options.timeout),
                    if from.is_empty() {
                        String::new()
                    } else {
                        format!(" (from {})", from.join(", "))
                    },
                    local.port(),
                )));
            }
            // Wake on a join, or every second to re-check the time.
            let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), waiting).await;
        }
    }
}

/// The addresses of `joined` that no longer answer a status call within `timeout`.
async fn still_there(joined: &[Connection], timeout: Duration) -> Vec<String> {
    let mut checks = tokio::task::JoinSet::new();
    for c in joined {
        let (mut client, address) = (c.client.clone(), c.address.clone());
        checks.spawn(async move {
            let mut request = Request::new(wire::StatusRequest {});
            request.set_timeout(timeout);
            (address, client.status(request).await.is_ok())
        });
    }
    let mut gone = Vec::new();
    while let Some(Ok((address, alive))) = checks.join_next().await {
        if !alive {
            gone.push(address);
        }
    }
    gone
}

/// A duration as people write it in configs: whole seconds, or milliseconds.
fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl JoinService {
    fn reply(&self, accepted: bool, reason: String, address: &str) -> wire::JoinReply {
        let (joined, expected) = self
            .roster
            .lock()
            .map_or((0, 0), |r| (r.joined.len() as u32, r.expect as u32));
        wire::JoinReply {
            accepted,
            reason,
            joined,
            expected,
            address: address.to_string(),
        }
    }

    /// Why a new worker cannot join now, if it cannot.
    fn full(&self) -> Option<String> {
        let r = self.roster.lock().ok()?;
        (r.started || r.joined.len() >= r.expect).then(|| {
            format!(
                "this coordinator's run already has its {} workers; wait for the next coordinator",
                r.expect
            )
        })
    }
}

/// Where to dial back the worker that sent `offer` from `peer`: its host (or the address the
/// offer came from) and its port; refused for another protocol version or a port that is none.
pub(crate) fn offer_address(offer: &wire::JoinRequest, peer: Option<SocketAddr>) -> Result<String, Status> {
    if offer.protocol_version != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "speaks protocol version {} (martelli {}); this coordinator speaks version {PROTOCOL_VERSION} (martelli {})",
            offer.protocol_version,
            offer.martelli_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let host = if offer.host.is_empty() {
        match peer {
            Some(peer) => peer.ip().to_string(),
            None => {
                return Err(Status::invalid_argument(
                    "no host given and the caller's address is unknown",
                ));
            }
        }
    } else {
        offer.host.clone()
    };
    let port = u16::try_from(offer.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Status::invalid_argument(format!("{} is not a port", offer.port)))?;
    Ok(match host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    })
}

#[tonic::async_trait]
impl coordinator_server::Coordinator for JoinService {
    async fn join(&self, request: Request<wire::JoinRequest>) -> Result<Response<wire::JoinReply>, Status> {
        let peer = request.remote_addr();
        let offer = request.into_inner();
        let address = offer_address(&offer, peer).inspect_err(|refusal| {
            tracing::warn!(
                worker = offer.worker_id,
                ?peer,
                reason = refusal.message(),
                "refused a joining worker"
            );
        })?;
        if self.roster.lock().is_ok_and(|r| r.joined.contains_key(&address)) {
            return Ok(Response::new(self.reply(true, "already joined".into(), &address)));
        }
        if let Some(reason) = self.full() {
            tracing::debug!(address, "a worker offered itself to a full run");
            return Ok(Response::new(self.reply(false, reason, &address)));
        }
        // Dial back, exactly as a listed worker is reached: token, TLS and version checked.
        let connection = match connect(&address, &self.client).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(worker = offer.worker_id, address, error = %e, "a joining worker cannot be reached back");
                return Ok(Response::new(self.reply(
                    false,
                    format!("the coordinator cannot reach this worker back: {e}"),
                    &address,
                )));
            }
        };
        // Checked again under the lock that adds it: two offers dialed back at once must not
        // both take the last place.
        let joined = {
            let mut r = self
                .roster
                .lock()
                .map_err(|_| Status::internal("poisoned roster"))?;
            if r.started || r.joined.len() >= r.expect {
                drop(r);
                let reason = self.full().unwrap_or_default();
                return Ok(Response::new(self.reply(false, reason, &address)));
            }
            r.joined.insert(address.clone(), connection);
            r.joined.len()
        };
        tracing::info!(
            worker = offer.worker_id,
            address,
            threads = offer.threads,
            joined,
            "worker joined"
        );
        self.changed.notify_waiters();
        Ok(Response::new(self.reply(true, "joined".into(), &address)))
    }
}
