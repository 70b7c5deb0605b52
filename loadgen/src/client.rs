//! A keep-alive HTTP/1.1 connection per worker, on hyper's low-level client.
//!
//! No pool and no retries: a worker owns one connection, reopens it when it fails, and every
//! failure is measured rather than hidden. `http://` and `https://` targets (rustls, with the
//! Mozilla roots built in, so it needs no CA bundle on the host); the address is resolved
//! once, before the run.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::stats::Failure;

/// Where requests go: a resolved address and the `Host` header that names it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) address: SocketAddr,
    pub(crate) host: HeaderValue,
    /// The URL's path prefix without its trailing slash ("" for the root).
    pub(crate) base_path: String,
    tls: Option<Tls>,
}

impl Endpoint {
    /// Resolves `http://host[:port][/prefix]`.
    pub(crate) async fn resolve(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("`{url}` must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(authority.host().to_owned())
                .map_err(|_| format!("`{}` is not a TLS server name", authority.host()))?;
            Some(Tls { connector: tls_connector(), name })
        } else {
            None
        };
        let address = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|error| format!("cannot resolve {}: {error}", authority.host()))?
            .next()
            .ok_or_else(|| format!("{} has no address", authority.host()))?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| format!("`{url}` has a bad host"))?;
        Ok(Endpoint { address, host, base_path: uri.path().trim_end_matches('/').to_owned(), tls })
    }
}

#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish_non_exhaustive()
    }
}

fn tls_connector() -> TlsConnector {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions are supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A plain or TLS stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An answer read to its end.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) bytes: u64,
    /// The body, when the caller asked to keep it.
    pub(crate) body: Option<Bytes>,
}

type Io = TokioIo<Box<dyn Stream>>;
/// The sending half of a connection and the future that drives it.
type Open = (SendRequest<Full<Bytes>>, Pin<Box<http1::Connection<Io, Full<Bytes>>>>);

/// One keep-alive connection. hyper's connection future is polled inside the worker's own task,
/// beside the request, rather than as a task of its own: no hand-off between tasks per request.
pub(crate) struct Connection {
    endpoint: Endpoint,
    open: Option<Open>,
}

impl Connection {
    pub(crate) fn new(endpoint: Endpoint) -> Connection {
        Connection { endpoint, open: None }
    }

    async fn connect(endpoint: &Endpoint) -> Result<Open, Failure> {
        let stream = TcpStream::connect(endpoint.address).await.map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let stream: Box<dyn Stream> = match &endpoint.tls {
            None => Box::new(stream),
            Some(tls) => Box::new(tls.connector.connect(tls.name.clone(), stream).await.map_err(|_| Failure::Connect)?),
        };
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|_| Failure::Connect)?;
        Ok((sender, Box::pin(connection)))
    }

    /// Sends `request` (its `Host` header is set here) and reads the whole answer within
    /// `timeout`, whatever its status.
    pub(crate) async fn send(
        &mut self,
        mut request: Request<Full<Bytes>>,
        timeout: Duration,
        keep_body: bool,
    ) -> Result<Answer, Failure> {
        request.headers_mut().insert(HOST, self.endpoint.host.clone());
        let endpoint = &self.endpoint;
        let slot = &mut self.open;
        let attempt = async move {
            // The connection is only polled while a request is on it: one poll first lets hyper
            // read what came while it was idle, such as the server closing it (a server that
            // drains closes its idle connections), so that the request goes on a new one
            // instead of failing on the closed one.
            if let Some((_, connection)) = slot.as_mut() {
                let ended = std::future::poll_fn(|cx| Poll::Ready(connection.as_mut().poll(cx).is_ready())).await;
                if ended {
                    *slot = None;
                }
            }
            if slot.as_ref().is_none_or(|(sender, _)| sender.is_closed()) {
                *slot = Some(Connection::connect(endpoint).await?);
            }
            let (sender, connection) = slot.as_mut().expect("opened above");
            let (answer, ended) = {
                let exchange = async {
                    sender.ready().await.map_err(|_| Failure::Io)?;
                    let response = sender.send_request(request).await.map_err(|_| Failure::Io)?;
                    let status = response.status();
                    let mut body = response.into_body();
                    let (mut bytes, mut kept) = (0u64, Vec::new());
                    while let Some(frame) = body.frame().await {
                        let frame = frame.map_err(|_| Failure::Io)?;
                        if let Some(data) = frame.data_ref() {
                            bytes += data.len() as u64;
                            if keep_body {
                                kept.extend_from_slice(data);
                            }
                        }
                    }
                    Ok(Answer { status, bytes, body: keep_body.then(|| Bytes::from(kept)) })
                };
                let mut exchange = std::pin::pin!(exchange);
                tokio::select! {
                    biased;
                    answer = &mut exchange => (answer, false),
                    // The connection ended. Cleanly, after reading an answer that said
                    // `Connection: close` (or one the server closed the connection after): that
                    // answer is whole in hyper's hands. Otherwise it failed before the answer.
                    ended = connection.as_mut() => match ended {
                        Ok(()) => (exchange.await, true),
                        Err(_) => (Err(Failure::Io), true),
                    },
                }
            };
            // One more poll lets hyper act on the answer: when it said `Connection: close`, or
            // the peer has hung up, the connection ends here and the next request opens another
            // instead of failing.
            let ended = ended || std::future::poll_fn(|cx| Poll::Ready(connection.as_mut().poll(cx).is_ready())).await;
            if ended {
                *slot = None;
            }
            answer
        };
        let result = tokio::time::timeout(timeout, attempt).await.unwrap_or(Err(Failure::Timeout));
        if result.is_err() {
            // The connection's state is unknown after a failure: open a new one next time.
            self.open = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers one request on each connection, keeping it alive, then closes it
    /// while it is idle: as a server that drains does.
    async fn closing_server() -> (SocketAddr, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let mut connections = 0;
            while connections < 2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                connections += 1;
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await.unwrap();
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
                stream.flush().await.unwrap();
                // Closed idle, before the client's next request.
                drop(stream);
            }
            connections
        });
        (address, served)
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_not_failed() {
        let (address, served) = closing_server().await;
        let endpoint = Endpoint::resolve(&format!("http://{address}")).await.unwrap();
        let mut connection = Connection::new(endpoint);
        let request = || Request::get("/").body(Full::new(Bytes::new())).unwrap();
        let first = connection.send(request(), Duration::from_secs(5), false).await;
        assert_eq!(first.map(|a| a.status.as_u16()).ok(), Some(200));
        // Time for the close to arrive while the connection is idle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = connection.send(request(), Duration::from_secs(5), false).await;
        assert_eq!(second.map(|a| a.status.as_u16()).ok(), Some(200), "the second request failed");
        assert_eq!(served.await.unwrap(), 2, "the second request went on a new connection");
    }
}
